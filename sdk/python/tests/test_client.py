from __future__ import annotations

import subprocess
import sys
import time

import pytest
from conftest import GRACE_S

import herd
from herd import SessionEventType


def ids(client: herd.Client) -> list[str]:
    return [s.session_id for s in client.sessions()]


def until(cond, what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_acquire_gives_routing_headers_and_with_releases(stub_url: str) -> None:
    with herd.Client(stub_url, timeout=5) as client:
        with client.acquire("browser", labels={"who": "pytest"}) as s:
            assert s.pool == "browser"
            assert s.worker_id
            assert s.proxy_url.startswith("http://")
            assert s.headers == {"X-Session-ID": s.id, "X-Herd-Token": s.token}
            assert dict(s.raw.labels) == {"who": "pytest"}
            again = client.acquire("browser", session_id=s.id)
            assert again.worker_id == s.worker_id
            assert s.id in ids(client)
        assert s.id not in ids(client)
        s.release()  # idempotent
        with pytest.raises(herd.NotFoundError):
            client.release(s.id)


def test_typed_errors(stub_url: str, token_stub_url: str) -> None:
    client = herd.Client(stub_url, timeout=5)
    with pytest.raises(herd.NotFoundError) as unknown:
        client.acquire("no-such-pool")
    assert unknown.value.code_name == "not_found"
    with pytest.raises(herd.InvalidArgumentError):
        client.acquire("browser", session_id="bad id!")
    with pytest.raises(herd.InvalidArgumentError):
        client.acquire("browser", session_id="x" * 10_000)
    with pytest.raises(herd.UnauthenticatedError):
        herd.Client(token_stub_url).stats()
    assert herd.Client(token_stub_url, token="s3cret").stats().pools
    with pytest.raises(ValueError, match="protocol"):
        herd.Client(stub_url, protocol="carrier-pigeon")


def test_session_holds_past_the_grace_and_releases_on_exit(stub_url: str) -> None:
    client = herd.Client(stub_url, timeout=5)
    with client.session("default") as s:
        assert s.heartbeat_grace == pytest.approx(GRACE_S)
        time.sleep(GRACE_S * 3)
        assert s.held, s.error
        assert s.id in ids(client)
    assert not s.held and s.error is None
    assert s.id not in ids(client)


def test_hold_reports_loss_when_the_session_ends_elsewhere(stub_url: str) -> None:
    client = herd.Client(stub_url, timeout=5)
    with client.session("default") as s:
        client.release(s.id)
        assert s.wait_lost(5)
        assert isinstance(s.error, herd.HoldLostError)


def test_watch_sees_events_in_order_and_resumes(stub_url: str) -> None:
    client = herd.Client(stub_url, timeout=5)
    seen = []
    events = client.watch("default", snapshot=True)
    for ev in events:
        seen.append((ev.type, ev.session_id, ev.revision))
        if ev.type == SessionEventType.SESSION_EVENT_TYPE_SNAPSHOT_COMPLETE:
            client.acquire("default", session_id="py-watch").release()
        if ev.type == SessionEventType.SESSION_EVENT_TYPE_SESSION_RELEASED:
            break
    events.close()
    tail = [(t, i) for t, i, _ in seen[-2:]]
    assert tail == [
        (SessionEventType.SESSION_EVENT_TYPE_SESSION_ACQUIRED, "py-watch"),
        (SessionEventType.SESSION_EVENT_TYPE_SESSION_RELEASED, "py-watch"),
    ]
    acquired_rev = seen[-2][2]
    assert seen[-1][2] > acquired_rev
    replay = client.watch(session_id="py-watch", since_revision=acquired_rev - 1)
    first = next(replay)
    replay.close()
    assert (first.type, first.revision) == (
        SessionEventType.SESSION_EVENT_TYPE_SESSION_ACQUIRED,
        acquired_rev,
    )


def test_session_ends_when_the_holding_process_is_killed(
    stub_url: str, python_env: dict[str, str]
) -> None:
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time, herd\n"
            "with herd.Client(sys.argv[1]).session('default') as s:\n"
            "    print('HELD', s.id, flush=True)\n"
            "    time.sleep(600)\n",
            stub_url,
        ],
        env=python_env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.startswith("HELD "), line
        sid = line.split()[1]
        client = herd.Client(stub_url, timeout=5)
        assert sid in ids(client)
        child.kill()
        child.wait(10)
        until(lambda: sid not in ids(client), "the killed holder's session to end")
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_tenant_key_is_the_bearer_and_rides_on_the_data_plane(token_stub_url: str) -> None:
    with herd.Client(token_stub_url, tenant_key="s3cret", timeout=5) as client:
        with client.acquire("browser") as s:
            assert s.headers == {
                "X-Session-ID": s.id,
                "X-Herd-Token": s.token,
                "X-Herd-Key": "s3cret",
            }
        with client.session("browser") as held:
            assert held.headers["X-Herd-Key"] == "s3cret"
    with pytest.raises(herd.UnauthenticatedError):
        herd.Client(token_stub_url, tenant_key="other").stats()
    with pytest.raises(ValueError, match="token .* or tenant_key, not both"):
        herd.Client(token_stub_url, token="a", tenant_key="b")
