"""The asyncio herd client: the same calls as :class:`herd.Client`, awaited.

Invariant: an AsyncHeldSession is held exactly while its HoldSession stream is open; a task
drains the stream (its end is the hold's end) and another renews the hold every third of the
daemon's grace. Releasing cancels both, which closes the stream.
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

    def __init__(self, raw: pb.Session, release: _Release) -> None:
        super().__init__(raw)
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

    def __init__(self, start: _core.HoldStart, release: _Release) -> None:
        super().__init__(start.session)
        self.hold_id = start.hold_id
        self.heartbeat_grace = start.grace
        self._release = release
        self._over = asyncio.Event()
        self._error: HerdError | None = None
        self._tasks: list[asyncio.Task[None]] = []

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
        timeout: float | None = None,
        protocol: str = "connect",
    ) -> None:
        self._rpc = HerdServiceClient(base_url.rstrip("/"), protocol=_core.protocol_type(protocol))
        self._headers = _core.auth_headers(token)
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
        return AsyncSession(res.session, self._release_gone_ok)

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
        daemon at once should this process die."""
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
        held = AsyncHeldSession(start, self._release_gone_ok)
        held._tasks.append(asyncio.create_task(_drain(it, held)))
        if start.grace > 0:
            held._tasks.append(asyncio.create_task(self._renew(held, start)))
        return held

    async def watch(
        self,
        pool: str = "",
        *,
        session_id: str | None = None,
        snapshot: bool = False,
        since_revision: int = 0,
    ) -> AsyncIterator[pb.SessionEvent]:
        """Lifecycle events as they happen; leave the loop to stop."""
        req = _core.watch_request(pool, session_id, snapshot, since_revision)
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

    async def _release_gone_ok(self, session_id: str, kill: bool) -> None:
        try:
            await self.release(session_id, kill=kill)
        except NotFoundError:
            pass

    async def _renew(self, held: AsyncHeldSession, start: _core.HoldStart) -> None:
        clock = _core.RenewClock(start.grace)
        req = pb.RenewHoldRequest(session_id=held.id, hold_id=held.hold_id)
        while held.held:
            await asyncio.sleep(clock.every)
            try:
                await self._rpc.renew_hold(req, headers=self._headers, timeout_ms=clock.timeout_ms())
                clock.renewed()
            except ConnectError as e:
                if (lost := clock.failed(e)) is not None:
                    held._lose(lost)


async def _drain(it: AsyncIterator[pb.HoldSessionResponse], held: AsyncHeldSession) -> None:
    """Consume heartbeats; the stream's end is the hold's end."""
    try:
        async for _ in it:
            pass
        held._lose(HoldLostError("hold stream ended by the daemon", Code.UNAVAILABLE))
    except ConnectError as e:
        held._lose(HoldLostError(f"hold lost: {e.message}", e.code))
    except asyncio.CancelledError:
        raise
    except Exception as e:  # the transport failed under us: the hold is over all the same
        held._lose(HoldLostError(f"hold lost: {e}", Code.UNAVAILABLE))
