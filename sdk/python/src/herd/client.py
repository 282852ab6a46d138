"""The synchronous herd client.

Invariant: a HeldSession is held while its HoldSession stream is open, or while it re-attaches
after a transient stream failure (at most a grace since the daemon last showed it alive). A
background thread drains the stream and re-attaches (attach_only) when it fails that way;
another renews the hold every third of the daemon's grace, and pauses while re-attaching. Both
are daemon threads that stop once the hold is over.
Concurrency: the generated client is shared by the caller's thread and those two threads;
HeldSession's state (over, hold_id, re-attaching) changes under its lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from types import TracebackType

from connectrpc.code import Code
from connectrpc.errors import ConnectError

from . import _core
from .errors import HerdError, HoldLostError, NotFoundError
from .v1 import herd_pb2 as pb
from .v1.herd_connect import HerdServiceClientSync


class Session(_core.SessionInfo):
    """An acquired session; ``release()`` (or leaving ``with``) ends it."""

    def __init__(
        self, raw: pb.Session, release: Callable[[str, bool], None], key: str | None = None
    ) -> None:
        super().__init__(raw, key)
        self._release = release
        self._released = False

    def release(self, *, kill: bool = False) -> None:
        """End the session now. Idempotent; a session already gone counts as released."""
        if not self._released:
            self._released = True
            self._release(self.id, kill)

    def __enter__(self) -> Session:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


class HeldSession(_core.SessionInfo):
    """A session held through HoldSession: it ends as soon as this process stops holding it."""

    def __init__(
        self, start: _core.HoldStart, release: Callable[[str, bool], None], key: str | None = None
    ) -> None:
        super().__init__(start.session, key)
        self.hold_id = start.hold_id
        """Identifies the current hold to RenewHold; a new one after each re-attach."""
        self.heartbeat_grace = start.grace
        self.reattaches = 0
        """How often the hold re-attached after a transient stream failure."""
        self._release = release
        self._lock = threading.Lock()
        self._over = threading.Event()
        self._error: HerdError | None = None
        self._reattaching = False

    @property
    def held(self) -> bool:
        """True until the hold ends (released, or lost: see ``error``)."""
        return not self._over.is_set()

    @property
    def error(self) -> HerdError | None:
        """Why the hold was lost, when it was lost rather than released."""
        return self._error

    def wait_lost(self, timeout: float | None = None) -> bool:
        """Block until the hold ends or ``timeout`` passes; True when it ended."""
        return self._over.wait(timeout)

    def release(self, *, kill: bool = False) -> None:
        """End the session (ReleaseSession, so ``kill`` applies); the stream then closes."""
        with self._lock:
            live = not self._over.is_set()
            self._over.set()
        if live:
            self._release(self.id, kill)

    def _lose(self, err: HerdError) -> None:
        with self._lock:
            if self._over.is_set():
                return
            self._error = err
            self._over.set()

    def _stream_failed(self) -> None:
        with self._lock:
            self._reattaching = True

    def _reattached(self, start: _core.HoldStart) -> bool:
        """Take over the re-attached hold; False when this hold ended meanwhile."""
        with self._lock:
            if self._over.is_set():
                return False
            self.hold_id = start.hold_id
            self.reattaches += 1
            self._reattaching = False
            return True


class Client:
    """Synchronous client of the herd control plane.

    ``Client("http://127.0.0.1:7070", token=None, timeout=None, protocol="connect")``;
    ``tenant_key`` instead of ``token``: a tenant's key, the control plane's bearer token and
    ``X-Herd-Key`` in every session's ``headers`` (the data plane's credential);
    ``timeout`` (seconds) bounds every unary call, never the streams.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        tenant_key: str | None = None,
        timeout: float | None = None,
        protocol: str = "connect",
    ) -> None:
        self._rpc = HerdServiceClientSync(
            base_url.rstrip("/"), protocol=_core.protocol_type(protocol)
        )
        self._headers = _core.auth_headers(token, tenant_key)
        self._key = tenant_key
        self._timeout_ms = _core.timeout_ms(timeout)

    def close(self) -> None:
        self._rpc.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def acquire(
        self,
        pool: str = "",
        *,
        session_id: str | None = None,
        wait: float | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> Session:
        """Pin a session to a worker; it lives until released or expired by the daemon."""
        req = _core.acquire_request(pool, session_id, wait, labels)
        with _core.herd_errors():
            res = self._rpc.acquire_session(req, headers=self._headers, timeout_ms=self._timeout_ms)
        return Session(res.session, self._release_gone_ok, self._key)

    def release(self, session_id: str, *, kill: bool = False) -> None:
        """End a session by ID (``NotFoundError`` when there is none)."""
        req = pb.ReleaseSessionRequest(session_id=session_id, kill=kill)
        with _core.herd_errors():
            self._rpc.release_session(req, headers=self._headers, timeout_ms=self._timeout_ms)

    @contextmanager
    def session(
        self,
        pool: str = "",
        *,
        session_id: str | None = None,
        wait: float | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> Iterator[HeldSession]:
        """Hold a session for the ``with`` block: released on exit, and ended by the daemon
        should this process die (once the pool's ``disconnect_grace`` has passed)."""
        held = self.hold(pool, session_id=session_id, wait=wait, labels=labels)
        try:
            yield held
        finally:
            held.release()

    def hold(
        self,
        pool: str = "",
        *,
        session_id: str | None = None,
        wait: float | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> HeldSession:
        """Start holding a session; prefer ``with client.session(...)``. Call ``release()``."""
        stream = self._rpc.hold_session(
            _core.hold_request(pool, session_id, wait, labels), headers=self._headers
        )
        with _core.herd_errors():
            start = _core.hold_start(next(stream, None))
        held = HeldSession(start, self._release_gone_ok, self._key)
        clock = _core.RenewClock(start.grace)
        threading.Thread(target=self._keep, args=(stream, held, clock), daemon=True).start()
        if start.grace > 0:
            threading.Thread(target=self._renew, args=(held, clock), daemon=True).start()
        return held

    def watch(
        self,
        pool: str = "",
        *,
        session_id: str | None = None,
        snapshot: bool = False,
        since_revision: int = 0,
        connection_events: bool = False,
    ) -> Iterator[pb.SessionEvent]:
        """Lifecycle events as they happen; leave the loop (or close the iterator) to stop."""
        req = _core.watch_request(pool, session_id, snapshot, since_revision, connection_events)
        with _core.herd_errors():
            yield from self._rpc.watch_sessions(req, headers=self._headers)

    def stats(self, pool: str = "") -> pb.GetStatsResponse:
        with _core.herd_errors():
            return self._rpc.get_stats(
                pb.GetStatsRequest(pool=pool), headers=self._headers, timeout_ms=self._timeout_ms
            )

    def sessions(self, pool: str = "") -> list[pb.Session]:
        with _core.herd_errors():
            res = self._rpc.list_sessions(
                pb.ListSessionsRequest(pool=pool),
                headers=self._headers,
                timeout_ms=self._timeout_ms,
            )
        return list(res.sessions)

    def usage(self, session_id: str) -> pb.SessionUsage | None:
        """What a live session used so far (CPU seconds, memory peak, bytes in and out; a
        figure the host cannot give is unset: check ``HasField``); None when it is not live."""
        for s in self.sessions():
            if s.session_id == session_id:
                return s.usage
        return None

    def tail_logs(self, session_id: str, *, follow: bool = False) -> Iterator[bytes]:
        """The raw bytes the session's worker wrote to stdout and stderr since the session
        began; with ``follow``, each later write until the session ends. Leave the loop (or
        close the iterator) to stop."""
        req = pb.TailSessionLogsRequest(session_id=session_id, follow=follow)
        with _core.herd_errors():
            for piece in self._rpc.tail_session_logs(req, headers=self._headers):
                yield piece.data

    def _release_gone_ok(self, session_id: str, kill: bool) -> None:
        try:
            self.release(session_id, kill=kill)
        except NotFoundError:
            pass

    def _renew(self, held: HeldSession, clock: _core.RenewClock) -> None:
        while not held.wait_lost(clock.every):
            if held._reattaching:
                # The keeper's attempt may hang on a dead network; the grace still holds.
                if clock.remaining() <= 0:
                    held._lose(clock.gave_up(HoldLostError("stream failed", Code.UNAVAILABLE)))
                continue
            hold_id = held.hold_id
            req = pb.RenewHoldRequest(session_id=held.id, hold_id=hold_id)
            try:
                self._rpc.renew_hold(req, headers=self._headers, timeout_ms=clock.timeout_ms())
                clock.renewed()
            except ConnectError as e:
                # A hold that failed meanwhile is the keeper's to re-attach, not this one's to end.
                if held._reattaching or held.hold_id != hold_id:
                    continue
                if (lost := clock.failed(e)) is not None:
                    held._lose(lost)

    def _keep(
        self, stream: Iterator[pb.HoldSessionResponse], held: HeldSession, clock: _core.RenewClock
    ) -> None:
        """Drain the stream; after a transient failure, re-attach and drain again."""
        while True:
            lost, transient = _drain(stream, clock)
            if not held.held:
                return
            if not transient or clock.grace <= 0:
                held._lose(lost)
                return
            held._stream_failed()
            reattached = self._reattach(held, clock, lost)
            if reattached is None:
                return
            stream = reattached

    def _reattach(
        self, held: HeldSession, clock: _core.RenewClock, last: HoldLostError
    ) -> Iterator[pb.HoldSessionResponse] | None:
        req = _core.reattach_request(held.pool, held.id)
        for delay in clock.backoff():
            if held.wait_lost(delay):
                return None
            stream = self._rpc.hold_session(req, headers=self._headers)
            try:
                start = _core.hold_start(next(stream, None))
            except Exception as e:  # each failure is classified: transient or final
                failure, transient = _core.stream_failure(e)
                if not transient:
                    held._lose(_core.reattach_refused(held.id, failure))
                    return None
                last = failure
                continue
            if (mismatch := _core.reattach_mismatch(held, start)) is not None:
                _close(stream)  # ends the stray session on such a daemon
                held._lose(mismatch)
                return None
            if not held._reattached(start):
                _close(stream)
                return None
            clock.renewed()
            return stream
        held._lose(clock.gave_up(last))
        return None


def _drain(
    stream: Iterator[pb.HoldSessionResponse], clock: _core.RenewClock
) -> tuple[HoldLostError, bool]:
    """Consume heartbeats until the stream ends; how it ended, and whether that is transient."""
    try:
        for _ in stream:
            clock.renewed()
        return _core.stream_failure(None)
    except Exception as e:  # a transport failure is a stream failure too
        return _core.stream_failure(e)


def _close(stream: Iterator[pb.HoldSessionResponse]) -> None:
    close = getattr(stream, "close", None)
    if close is not None:
        close()
