"""Fixtures: a stand-in herd control plane (sdk/ts/test/stub-herd-main.ts, a real Connect
server on a loopback port) for the SDK's own checks. The scenario suite against the real
daemon lives with the daemon's tests.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from tcp_relay import TcpRelay

ROOT = Path(__file__).resolve().parents[3]
GRACE_S = 1.0


def _start_stub(*args: str) -> tuple[subprocess.Popen[str], str]:
    tsx = ROOT / "node_modules" / ".bin" / "tsx"
    proc = subprocess.Popen(
        [str(tsx), str(ROOT / "sdk/ts/test/stub-herd-main.ts"), *args],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("LISTENING "):
        proc.kill()
        proc.wait()
        raise RuntimeError(f"stub herd did not start: {line!r}")
    return proc, line.split()[1]


def _stop_stub(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.close()  # the stub exits when its stdin closes
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    assert proc.returncode is not None


@pytest.fixture(scope="session")
def stub_url() -> Iterator[str]:
    proc, url = _start_stub("--grace-ms", str(int(GRACE_S * 1000)))
    try:
        yield url
    finally:
        _stop_stub(proc)


@pytest.fixture(scope="session")
def windowed_stub_url() -> Iterator[str]:
    """A stub with the daemon's reconnect window: a dropped hold keeps its session 3 graces."""
    proc, url = _start_stub(
        "--grace-ms", str(int(GRACE_S * 1000)), "--disconnect-grace-ms", str(int(GRACE_S * 3000))
    )
    try:
        yield url
    finally:
        _stop_stub(proc)


@pytest.fixture()
def windowed_relay(windowed_stub_url: str) -> Iterator[TcpRelay]:
    """A relay in front of the windowed stub, for a test to cut."""
    relay = TcpRelay(windowed_stub_url)
    try:
        yield relay
    finally:
        relay.close()


@pytest.fixture()
def windowless_relay(stub_url: str) -> Iterator[TcpRelay]:
    """A relay in front of the stub without a window: a dropped hold ends its session at once."""
    relay = TcpRelay(stub_url)
    try:
        yield relay
    finally:
        relay.close()


@pytest.fixture(scope="session")
def token_stub_url() -> Iterator[str]:
    proc, url = _start_stub("--token", "s3cret")
    try:
        yield url
    finally:
        _stop_stub(proc)


@pytest.fixture()
def python_env() -> dict[str, str]:
    """Environment for a child Python that imports this SDK from source."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "sdk/python/src")
    return env
