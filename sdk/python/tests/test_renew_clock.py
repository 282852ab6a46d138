"""The hold's give-up rule, shared by both clients: slow renewals within the grace keep it."""

import time

from connectrpc.code import Code
from connectrpc.errors import ConnectError

from herd import HoldLostError
from herd._core import RenewClock


def test_a_renewal_may_take_the_rest_of_the_grace() -> None:
    clock = RenewClock(3.0)
    assert clock.every == 1.0
    timeout = clock.timeout_ms()
    assert timeout is not None and 2900 <= timeout <= 3000


def test_transient_failures_within_the_grace_keep_the_hold() -> None:
    clock = RenewClock(0.2)
    assert clock.failed(ConnectError(Code.UNAVAILABLE, "daemon busy")) is None
    time.sleep(0.25)
    lost = clock.failed(ConnectError(Code.UNAVAILABLE, "daemon busy"))
    assert isinstance(lost, HoldLostError) and lost.code == Code.UNAVAILABLE
    clock.renewed()
    assert clock.failed(ConnectError(Code.DEADLINE_EXCEEDED, "slow")) is None


def test_a_hold_the_daemon_no_longer_knows_ends_at_once() -> None:
    lost = RenewClock(60).failed(ConnectError(Code.NOT_FOUND, "no hold"))
    assert isinstance(lost, HoldLostError) and "refused" in str(lost)
