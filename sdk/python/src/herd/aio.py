"""The asyncio herd client: the same calls as :class:`herd.Client`, awaited.

Invariant: an AsyncHeldSession is held while its HoldSession stream is open, or while it
re-attaches after a transient stream failure (at most a grace since the daemon last showed it
alive). A task drains the stream and re-attaches (attach_only) when it fails that way; another
renews the hold every third of the daemon's grace, and pauses while re-attaching. Releasing
cancels both, which closes the stream.
Concurrency: one event loop; state changes happen between awaits only.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from types import TracebackType

from connectrpc.code import Code
from connectrpc.errors import ConnectError

from . import _core
from .errors import HerdError, HoldLostError, NotFoundError
from .v1 import herd_pb2 as pb
from .v1.herd_connect import HerdServiceClient

_Release = Callable[[str, bool], Awaitable[None]]


class AsyncSession(_core.SessionInfo):
    """An acquired session; ``await release()`` (or leaving ``async with``) ends it."""

    def __init__(
        self, raw: pb.Session, release: _Release, key: str | None = None
    ) -> None:
        super().__init__(raw, key)
        self._release = release
        self._released = False

    async def release(self, *, kill: bool = False) -> None:
        """End the session now. Idempotent; a session already gone counts as released."""
        if not self._released:
            self._released = True
            await self._release(self.id, kill)

    async def __aenter__(self) -> AsyncSession:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.release()


class AsyncHeldSession(_core.SessionInfo):
    """A session held through HoldSession: it ends as soon as this process stops holding it."""

    def __init__(
        self, start: _core.HoldStart, release: _Release, key: str | None = None
    ) -> None:
        super().__init__(start.session, key)
        self.hold_id = start.hold_id
        """Identifies the current hold to RenewHold; a new one after each re-attach."""
        self.heartbeat_grace = start.grace
        self.reattaches = 0
        """How often the hold re-attached after a transient stream failure."""
        self._release = release
        self._over = asyncio.Event()
        self._error: HerdError | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._reattaching = False

    @property
    def held(self) -> bool:
        """True until the hold ends (released, or lost: see ``error``)."""
        return not self._over.is_set()

    @property
    def error(self) -> HerdError | None:
        """Why the hold was lost, when it was lost rather than released."""
        return self._error

    async def wait_lost(self) -> None:
        """Return once the hold has ended."""
        await self._over.wait()

    async def release(self, *, kill: bool = False) -> None:
        """End the session (ReleaseSession, so ``kill`` applies) and close the stream."""
        live = self.held
        self._over.set()
        try:
            if live:
                await self._release(self.id, kill)
        finally:
            for t in self._tasks:
                t.cancel()

    def _lose(self, err: HerdError) -> None:
        if self.held:
            self._error = err
            self._over.set()
            for t in self._tasks:
                if t is not asyncio.current_task():
                    t.cancel()


class AsyncClient:
    """Asyncio client of the herd control plane; arguments as for :class:`herd.Client`."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        tenant_key: str | None = None,
        timeout: float | None = None,
        protocol: str = "connect",
    ) -> None:
        self._rpc = HerdServiceClient(base_url.rstrip("/"), protocol=_core.protocol_type(protocol))
        self._headers = _core.auth_headers(token, tenant_key)
        self._key = tenant_key
        self._timeout_ms = _core.timeout_ms(timeout)

    async def close(self) -> None:
        await self._rpc.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def acquire(
        self,
        pool: str = "",
        *,
        session_id: str | None = None,
        wait: float | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> AsyncSession:
        """Pin a session to a worker; it lives until released or expired by the daemon."""
        req = _core.acquire_request(pool, session_id, wait, labels)
        with _core.herd_errors():
            res = await self._rpc.acquire_session(
                req, headers=self._headers, timeout_ms=self._timeout_ms
            )
        return AsyncSession(res.session, self._release_gone_ok, self._key)

    async def release(self, session_id: str, *, kill: bool = False) -> None:
        """End a session by ID (``NotFoundError`` when there is none)."""
        req = pb.ReleaseSessionRequest(session_id=session_id, kill=kill)
        with _core.herd_errors():
            await self._rpc.release_session(req, headers=self._headers, timeout_ms=self._timeout_ms)

    @asynccontextmanager
    async def session(
        self,
        pool: str = "",
        *,
        session_id: str | None = None,
        wait: float | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> AsyncIterator[AsyncHeldSession]:
        """Hold a session for the ``async with`` block: released on exit, and ended by the
        daemon should this process die (once the pool's ``disconnect_grace`` has passed)."""
        held = await self.hold(pool, session_id=session_id, wait=wait, labels=labels)
        try:
            yield held
        finally:
            await held.release()

    async def hold(
        self,
        pool: str = "",
        *,
        session_id: str | None = None,
        wait: float | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> AsyncHeldSession:
        """Start holding a session; prefer ``async with client.session(...)``."""
        stream = self._rpc.hold_session(
            _core.hold_request(pool, session_id, wait, labels), headers=self._headers
        )
        it = aiter(stream)
        with _core.herd_errors():
            start = _core.hold_start(await anext(it, None))
        held = AsyncHeldSession(start, self._release_gone_ok, self._key)
        clock = _core.RenewClock(start.grace)
        held._tasks.append(asyncio.create_task(self._keep(it, held, clock)))
        if start.grace > 0:
            held._tasks.append(asyncio.create_task(self._renew(held, clock)))
        return held

    async def watch(
        self,
        pool: str = "",
        *,
        session_id: str | None = None,
        snapshot: bool = False,
        since_revision: int = 0,
        connection_events: bool = False,
    ) -> AsyncIterator[pb.SessionEvent]:
        """Lifecycle events as they happen; leave the loop to stop."""
        req = _core.watch_request(pool, session_id, snapshot, since_revision, connection_events)
        with _core.herd_errors():
            async for ev in self._rpc.watch_sessions(req, headers=self._headers):
                yield ev

    async def stats(self, pool: str = "") -> pb.GetStatsResponse:
        with _core.herd_errors():
            return await self._rpc.get_stats(
                pb.GetStatsRequest(pool=pool), headers=self._headers, timeout_ms=self._timeout_ms
            )

    async def sessions(self, pool: str = "") -> list[pb.Session]:
        with _core.herd_errors():
            res = await self._rpc.list_sessions(
                pb.ListSessionsRequest(pool=pool),
                headers=self._headers,
                timeout_ms=self._timeout_ms,
            )
        return list(res.sessions)

    async def usage(self, session_id: str) -> pb.SessionUsage | None:
        """What a live session used so far (see ``Client.usage``); None when it is not live."""
        for s in await self.sessions():
            if s.session_id == session_id:
                return s.usage
        return None

    async def tail_logs(self, session_id: str, *, follow: bool = False) -> AsyncIterator[bytes]:
        """The session's worker output since it began (see ``Client.tail_logs``)."""
        req = pb.TailSessionLogsRequest(session_id=session_id, follow=follow)
        with _core.herd_errors():
            async for piece in self._rpc.tail_session_logs(req, headers=self._headers):
                yield piece.data

    async def _release_gone_ok(self, session_id: str, kill: bool) -> None:
        try:
            await self.release(session_id, kill=kill)
        except NotFoundError:
            pass

    async def _renew(self, held: AsyncHeldSession, clock: _core.RenewClock) -> None:
        while held.held:
            await asyncio.sleep(clock.every)
            if held._reattaching:
                continue  # the keeper bounds its attempts by the grace itself
            hold_id = held.hold_id
            req = pb.RenewHoldRequest(session_id=held.id, hold_id=hold_id)
            try:
                await self._rpc.renew_hold(req, headers=self._headers, timeout_ms=clock.timeout_ms())
                clock.renewed()
            except ConnectError as e:
                # A hold that failed meanwhile is the keeper's to re-attach, not this one's to end.
                if held._reattaching or held.hold_id != hold_id:
                    continue
                if (lost := clock.failed(e)) is not None:
                    held._lose(lost)

    async def _keep(
        self,
        it: AsyncIterator[pb.HoldSessionResponse],
        held: AsyncHeldSession,
        clock: _core.RenewClock,
    ) -> None:
        """Drain the stream; after a transient failure, re-attach and drain again."""
        while True:
            lost, transient = await _drain(it, clock)
            if not held.held:
                return
            if not transient or clock.grace <= 0:
                held._lose(lost)
                return
            held._reattaching = True
            reattached = await self._reattach(held, clock, lost)
            if reattached is None:
                return
            it = reattached

    async def _reattach(
        self, held: AsyncHeldSession, clock: _core.RenewClock, last: HoldLostError
    ) -> AsyncIterator[pb.HoldSessionResponse] | None:
        req = _core.reattach_request(held.pool, held.id)
        for delay in clock.backoff():
            await asyncio.sleep(delay)
            it = aiter(self._rpc.hold_session(req, headers=self._headers))
            try:
                first = await asyncio.wait_for(anext(it, None), max(clock.remaining(), 0.001))
                start = _core.hold_start(first)
            except TimeoutError as e:
                last = HoldLostError(f"hold lost: re-attaching timed out: {e}", Code.UNAVAILABLE)
                continue
            except Exception as e:  # each failure is classified: transient or final
                failure, transient = _core.stream_failure(e)
                if not transient:
                    held._lose(_core.reattach_refused(held.id, failure))
                    return None
                last = failure
                continue
            if (mismatch := _core.reattach_mismatch(held, start)) is not None:
                await _close(it)  # ends the stray session on such a daemon
                held._lose(mismatch)
                return None
            held.hold_id = start.hold_id
            held.reattaches += 1
            held._reattaching = False
            clock.renewed()
            return it
        held._lose(clock.gave_up(last))
        return None


async def _drain(
    it: AsyncIterator[pb.HoldSessionResponse], clock: _core.RenewClock
) -> tuple[HoldLostError, bool]:
    """Consume heartbeats until the stream ends; how it ended, and whether that is transient."""
    try:
        async for _ in it:
            clock.renewed()
        return _core.stream_failure(None)
    except asyncio.CancelledError:
        raise
    except Exception as e:  # a transport failure is a stream failure too
        return _core.stream_failure(e)


async def _close(it: AsyncIterator[pb.HoldSessionResponse]) -> None:
    close = getattr(it, "aclose", None)
    if close is not None:
        await close()
