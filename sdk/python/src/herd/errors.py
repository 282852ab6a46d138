"""Typed errors of the herd SDK.

Every failed call raises a :class:`HerdError` subclass chosen by the Connect code the
daemon answered with (DESIGN.md's error table), so callers catch ``herd.NotFoundError``
instead of parsing messages. ``err.code`` is the :class:`connectrpc.code.Code`.
"""

from __future__ import annotations

from connectrpc.code import Code
from connectrpc.errors import ConnectError


class HerdError(Exception):
    """A call to the herd control plane failed."""

    code: Code

    def __init__(self, message: str, code: Code = Code.UNKNOWN) -> None:
        super().__init__(message)
        self.message = message
        self.code = code

    @property
    def code_name(self) -> str:
        """The code as snake_case, e.g. ``"not_found"``."""
        return self.code.value

    def __str__(self) -> str:
        return f"[{self.code.value}] {self.message}"


class InvalidArgumentError(HerdError):
    """Bad input, e.g. a malformed session ID."""


class NotFoundError(HerdError):
    """Unknown pool or session."""


class UnauthenticatedError(HerdError):
    """Missing or wrong bearer token."""


class ResourceExhaustedError(HerdError):
    """The pool's acquire queue is full (or a watcher fell too far behind)."""


class DeadlineExceededError(HerdError):
    """The wait for a worker (or the call's timeout) ran out."""


class UnavailableError(HerdError):
    """A worker failed to start, the daemon is shutting down, or it cannot be reached."""


class HoldLostError(HerdError):
    """A held session ended while the caller was still holding it."""


_BY_CODE: dict[Code, type[HerdError]] = {
    Code.INVALID_ARGUMENT: InvalidArgumentError,
    Code.NOT_FOUND: NotFoundError,
    Code.UNAUTHENTICATED: UnauthenticatedError,
    Code.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    Code.DEADLINE_EXCEEDED: DeadlineExceededError,
    Code.UNAVAILABLE: UnavailableError,
}


def from_connect(err: ConnectError) -> HerdError:
    """The typed error for a ConnectError raised by the generated client."""
    return _BY_CODE.get(err.code, HerdError)(err.message, err.code)
