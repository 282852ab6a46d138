"""A hold survives a transient drop of its stream: both clients re-attach (attach_only) through
a relay the tests cut, keep the same session and worker, and report the hold lost only when
the session is gone or a grace passes without reaching the daemon."""

from __future__ import annotations

import asyncio
import time

from conftest import GRACE_S
from connectrpc.code import Code
from tcp_relay import TcpRelay
from test_client import ids, until

import herd


def test_sync_hold_reattaches_after_a_cut(windowed_relay: TcpRelay, windowed_stub_url: str) -> None:
    direct = herd.Client(windowed_stub_url, timeout=5)
    with herd.Client(windowed_relay.url, timeout=5).session("default") as s:
        before = (s.id, s.worker_id, s.token, s.hold_id)
        windowed_relay.cut()
        until(lambda: s.reattaches == 1, "the hold to re-attach")
        assert s.held, s.error
        assert (s.id, s.worker_id, s.token) == before[:3]
        assert s.hold_id != before[3]
        time.sleep(GRACE_S * 3)  # renewals go to the new hold
        assert s.held, s.error
        assert s.id in ids(direct)
    assert s.error is None
    assert s.id not in ids(direct)


def test_sync_hold_retries_while_the_daemon_is_briefly_unreachable(
    windowed_relay: TcpRelay,
) -> None:
    with herd.Client(windowed_relay.url, timeout=5).session("default") as s:
        windowed_relay.down = True
        windowed_relay.cut()
        time.sleep(GRACE_S / 3)
        windowed_relay.down = False
        until(lambda: s.reattaches == 1, "the hold to re-attach")
        assert s.held, s.error


def test_sync_hold_is_lost_once_a_grace_passes_unreachable(
    windowed_relay: TcpRelay, windowed_stub_url: str
) -> None:
    s = herd.Client(windowed_relay.url, timeout=5).hold("default")
    windowed_relay.down = True
    cut_at = time.monotonic()
    windowed_relay.cut()
    assert s.wait_lost(10)
    assert isinstance(s.error, herd.HoldLostError)
    assert "not re-attached within" in s.error.message
    assert time.monotonic() - cut_at >= GRACE_S / 2
    assert s.reattaches == 0
    # The daemon side: its window passes and the session ends.
    direct = herd.Client(windowed_stub_url, timeout=5)
    until(lambda: s.id not in ids(direct), "the window to end the session")


def test_sync_reattach_never_creates_a_session(windowless_relay: TcpRelay, stub_url: str) -> None:
    s = herd.Client(windowless_relay.url, timeout=5).hold("default")
    windowless_relay.cut()
    assert s.wait_lost(10)
    assert isinstance(s.error, herd.HoldLostError) and s.error.code == Code.NOT_FOUND, s.error
    time.sleep(0.2)
    assert s.id not in ids(herd.Client(stub_url, timeout=5))


def test_async_hold_reattaches_after_a_cut_and_never_creates_a_session(
    windowed_relay: TcpRelay, windowless_relay: TcpRelay
) -> None:
    async def main() -> None:
        async with herd.AsyncClient(windowed_relay.url, timeout=5) as client:
            async with client.session("default") as s:
                before = (s.id, s.worker_id, s.token, s.hold_id)
                windowed_relay.cut()
                deadline = time.monotonic() + 10
                while s.reattaches == 0 and time.monotonic() < deadline:
                    await asyncio.sleep(0.02)
                assert s.reattaches == 1 and s.held, s.error
                assert (s.id, s.worker_id, s.token) == before[:3]
                assert s.hold_id != before[3]
                await asyncio.sleep(GRACE_S * 3)
                assert s.held, s.error
                assert s.id in [x.session_id for x in await client.sessions()]
        async with herd.AsyncClient(windowless_relay.url, timeout=5) as client:
            gone = await client.hold("default")
            windowless_relay.cut()
            await asyncio.wait_for(gone.wait_lost(), 10)
            assert isinstance(gone.error, herd.HoldLostError)
            assert gone.error.code == Code.NOT_FOUND, gone.error
            await asyncio.sleep(0.2)
            assert gone.id not in [x.session_id for x in await client.sessions()]

    asyncio.run(main())
