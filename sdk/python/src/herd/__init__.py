"""herd: Python client for herd, the session-affine process pool daemon.

    import herd, httpx
    client = herd.Client("http://127.0.0.1:7070")
    with client.session("browser") as s:
        httpx.get(s.proxy_url + "/", headers=s.headers)

Generated protobuf messages and the Connect stubs live in ``herd.v1``.
"""

from .aio import AsyncClient, AsyncHeldSession, AsyncSession
from .client import Client, HeldSession, Session
from .errors import (
    DeadlineExceededError,
    HerdError,
    HoldLostError,
    InvalidArgumentError,
    NotFoundError,
    ResourceExhaustedError,
    UnauthenticatedError,
    UnavailableError,
)
from .v1.herd_pb2 import SessionEventType

__all__ = [
    "AsyncClient",
    "AsyncHeldSession",
    "AsyncSession",
    "Client",
    "DeadlineExceededError",
    "HeldSession",
    "HerdError",
    "HoldLostError",
    "InvalidArgumentError",
    "NotFoundError",
    "ResourceExhaustedError",
    "Session",
    "SessionEventType",
    "UnauthenticatedError",
    "UnavailableError",
]
