"""The synchronous herd client.

Invariant: a HeldSession is held exactly while its HoldSession stream is open; a background
thread drains the stream (its end is the hold's end) and another renews the hold every third
of the daemon's grace. Both are daemon threads that stop once the hold is over.
Concurrency: the generated client is shared by the caller's thread and those two threads;
HeldSession's state changes under its lock.
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

    def __init__(self, raw: pb.Session, release: Callable[[str, bool], None]) -> None:
        super().__init__(raw)
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

    def __init__(self, start: _core.HoldStart, release: Callable[[str, bool], None]) -> None:
        super().__init__(start.session)
        self.hold_id = start.hold_id
        self.heartbeat_grace = start.grace
        self._release = release
        self._lock = threading.Lock()
        self._over = threading.Event()
        self._error: HerdError | None = None

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


class Client:
    """Synchronous client of the herd control plane.

    ``Client("http://127.0.0.1:7070", token=None, timeout=None, protocol="connect")``;
    ``timeout`` (seconds) bounds every unary call, never the streams.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout: float | None = None,
        protocol: str = "connect",
    ) -> None:
        self._rpc = HerdServiceClientSync(
            base_url.rstrip("/"), protocol=_core.protocol_type(protocol)
        )
        self._headers = _core.auth_headers(token)
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
        return Session(res.session, self._release_gone_ok)

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
        at once should this process die."""
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
        held = HeldSession(start, self._release_gone_ok)
        threading.Thread(target=_drain, args=(stream, held), daemon=True).start()
        if start.grace > 0:
            threading.Thread(target=self._renew, args=(held, start), daemon=True).start()
        return held

    def watch(
        self,
        pool: str = "",
        *,
        session_id: str | None = None,
        snapshot: bool = False,
        since_revision: int = 0,
    ) -> Iterator[pb.SessionEvent]:
        """Lifecycle events as they happen; leave the loop (or close the iterator) to stop."""
        req = _core.watch_request(pool, session_id, snapshot, since_revision)
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

    def _release_gone_ok(self, session_id: str, kill: bool) -> None:
        try:
            self.release(session_id, kill=kill)
        except NotFoundError:
            pass

    def _renew(self, held: HeldSession, start: _core.HoldStart) -> None:
        clock = _core.RenewClock(start.grace)
        req = pb.RenewHoldRequest(session_id=held.id, hold_id=held.hold_id)
        while not held.wait_lost(clock.every):
            try:
                self._rpc.renew_hold(req, headers=self._headers, timeout_ms=clock.timeout_ms())
                clock.renewed()
            except ConnectError as e:
                if (lost := clock.failed(e)) is not None:
                    held._lose(lost)


def _drain(stream: Iterator[pb.HoldSessionResponse], held: HeldSession) -> None:
    """Consume heartbeats; the stream's end is the hold's end."""
    try:
        for _ in stream:
            pass
        held._lose(HoldLostError("hold stream ended by the daemon", Code.UNAVAILABLE))
    except ConnectError as e:
        held._lose(HoldLostError(f"hold lost: {e.message}", e.code))
    except Exception as e:  # the transport failed under us: the hold is over all the same
        held._lose(HoldLostError(f"hold lost: {e}", Code.UNAVAILABLE))
