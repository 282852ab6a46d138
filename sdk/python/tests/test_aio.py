from __future__ import annotations

import asyncio

import pytest
from conftest import GRACE_S

import herd
from herd import SessionEventType


def test_async_client_end_to_end(stub_url: str) -> None:
    async def main() -> None:
        async with herd.AsyncClient(stub_url, timeout=5) as client:
            async with await client.acquire("browser") as s:
                assert s.headers["X-Session-ID"] == s.id
                assert s.id in [x.session_id for x in await client.sessions()]
            assert s.id not in [x.session_id for x in await client.sessions()]

            with pytest.raises(herd.NotFoundError):
                await client.acquire("no-such-pool")

            async with client.session("default") as held:
                await asyncio.sleep(GRACE_S * 3)
                assert held.held, held.error
                assert held.id in [x.session_id for x in await client.sessions()]
            assert held.id not in [x.session_id for x in await client.sessions()]

            async with client.session("default") as lost:
                await client.release(lost.id)
                await asyncio.wait_for(lost.wait_lost(), 5)
                assert isinstance(lost.error, herd.HoldLostError)

            types = []
            async for ev in client.watch("default", snapshot=True):
                types.append(ev.type)
                if ev.type == SessionEventType.SESSION_EVENT_TYPE_SNAPSHOT_COMPLETE:
                    await (await client.acquire("default", session_id="aio-watch")).release()
                if ev.type == SessionEventType.SESSION_EVENT_TYPE_SESSION_RELEASED:
                    break
            assert types[-2:] == [
                SessionEventType.SESSION_EVENT_TYPE_SESSION_ACQUIRED,
                SessionEventType.SESSION_EVENT_TYPE_SESSION_RELEASED,
            ]
            stats = await client.stats("default")
            assert [p.name for p in stats.pools] == ["default"]

    asyncio.run(main())


def test_async_client_takes_a_tenant_key(token_stub_url: str) -> None:
    async def main() -> None:
        async with herd.AsyncClient(token_stub_url, tenant_key="s3cret", timeout=5) as client:
            async with await client.acquire("browser") as s:
                assert s.headers["X-Herd-Key"] == "s3cret"
            async with client.session("browser") as held:
                assert held.headers["X-Herd-Key"] == "s3cret"
        with pytest.raises(herd.UnauthenticatedError):
            await herd.AsyncClient(token_stub_url, tenant_key="other").stats()

    asyncio.run(main())
