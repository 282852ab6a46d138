"""What the sync Client and the async AsyncClient share: request building, auth headers,
error translation, session handles, the hold's renewal clock and its re-attach rules. No I/O
happens here, so both clients behave identically and differ only in how they wait.
"""

from __future__ import annotations

from collections.abc import Mapping
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from connectrpc.code import Code
from connectrpc.errors import ConnectError
from connectrpc.protocol import ProtocolType

from .errors import HerdError, HoldLostError, from_connect
from .v1 import herd_pb2 as pb

_R = TypeVar("_R", pb.AcquireSessionRequest, pb.HoldSessionRequest)

SESSION_HEADER = "X-Session-ID"
TOKEN_HEADER = "X-Herd-Token"
KEY_HEADER = "X-Herd-Key"

PROTOCOLS: dict[str, ProtocolType] = {
    "connect": ProtocolType.CONNECT,
    "grpc": ProtocolType.GRPC,
    "grpc-web": ProtocolType.GRPC_WEB,
}


def protocol_type(name: str) -> ProtocolType:
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise ValueError(f"protocol must be one of {sorted(PROTOCOLS)}, got {name!r}") from None


def auth_headers(token: str | None, tenant_key: str | None = None) -> dict[str, str]:
    """The control plane's bearer token: the operator's ``token`` or a ``tenant_key``."""
    if token is not None and tenant_key is not None:
        raise ValueError("give token (the operator's) or tenant_key, not both")
    bearer = tenant_key if tenant_key is not None else token
    return {} if bearer is None else {"authorization": f"Bearer {bearer}"}


@contextmanager
def herd_errors() -> Iterator[None]:
    """Raise a ConnectError from the block as the typed HerdError (for either client's calls)."""
    try:
        yield
    except ConnectError as e:
        raise from_connect(e) from e


def timeout_ms(seconds: float | None) -> int | None:
    return None if seconds is None else max(1, round(seconds * 1000))


def _fill(
    req: _R, session_id: str | None, wait: float | None, labels: Mapping[str, str] | None
) -> _R:
    req.session_id = session_id or ""
    req.labels.update(labels or {})
    if wait is not None:
        req.wait.FromMilliseconds(round(wait * 1000))
    return req


def acquire_request(
    pool: str, session_id: str | None, wait: float | None, labels: Mapping[str, str] | None
) -> pb.AcquireSessionRequest:
    return _fill(pb.AcquireSessionRequest(pool=pool), session_id, wait, labels)


def hold_request(
    pool: str, session_id: str | None, wait: float | None, labels: Mapping[str, str] | None
) -> pb.HoldSessionRequest:
    return _fill(pb.HoldSessionRequest(pool=pool), session_id, wait, labels)


def reattach_request(pool: str, session_id: str) -> pb.HoldSessionRequest:
    """HoldSession for a hold whose stream failed: that live session or NOT_FOUND, never new."""
    return pb.HoldSessionRequest(pool=pool, session_id=session_id, attach_only=True)


# Stream failures worth re-attaching after: the connection, not the daemon, said no.
TRANSIENT = frozenset({Code.UNAVAILABLE, Code.ABORTED, Code.INTERNAL, Code.UNKNOWN})
BACKOFF_FIRST_S = 0.05
BACKOFF_MAX_S = 1.0


def stream_failure(e: Exception | None) -> tuple[HoldLostError, bool]:
    """How a hold stream ended (None: cleanly), and whether re-attaching may cure it."""
    if e is None:
        return HoldLostError("hold stream ended by the daemon", Code.UNAVAILABLE), False
    if isinstance(e, ConnectError):
        return HoldLostError(f"hold lost: {e.message}", e.code), e.code in TRANSIENT
    if isinstance(e, HerdError):
        return HoldLostError(f"hold lost: {e.message}", e.code), False
    # The transport failed under the generated client without a status: a cut connection.
    return HoldLostError(f"hold lost: {e}", Code.UNAVAILABLE), True


def reattach_refused(session_id: str, e: HoldLostError) -> HoldLostError:
    msg = f"hold lost: re-attaching to session {session_id} failed: {e.message}"
    return HoldLostError(msg, e.code)


def reattach_mismatch(held: SessionInfo, start: HoldStart) -> HoldLostError | None:
    """A daemon that ignores attach_only makes a new session: that is not the one held."""
    if start.session.worker_id == held.worker_id and start.session.token == held.token:
        return None
    return HoldLostError(
        f"hold lost: session {held.id} came back on worker {start.session.worker_id},"
        f" not {held.worker_id}",
        Code.FAILED_PRECONDITION,
    )


def watch_request(
    pool: str,
    session_id: str | None,
    snapshot: bool,
    since_revision: int,
    connection_events: bool,
) -> pb.WatchSessionsRequest:
    return pb.WatchSessionsRequest(
        pool=pool,
        session_id=session_id or "",
        snapshot=snapshot,
        since_revision=since_revision,
        connection_events=connection_events,
    )


class SessionInfo:
    """A session pinned to one worker, as the daemon returned it (``raw``: the generated message)."""

    def __init__(self, raw: pb.Session, key: str | None = None) -> None:
        self.raw = raw
        self._key = key

    def __repr__(self) -> str:
        return f"<{type(self).__name__} id={self.id!r} pool={self.pool!r} worker={self.worker_id!r}>"

    @property
    def id(self) -> str:
        return self.raw.session_id

    @property
    def pool(self) -> str:
        return self.raw.pool

    @property
    def worker_id(self) -> str:
        return self.raw.worker_id

    @property
    def worker_pid(self) -> int:
        return self.raw.worker_pid

    @property
    def token(self) -> str:
        """The data plane's session token ("" when tokens are off)."""
        return self.raw.token

    @property
    def proxy_url(self) -> str:
        """Base URL of the data plane: send the session's HTTP/WebSocket traffic here."""
        return self.raw.data_plane_url

    @property
    def headers(self) -> dict[str, str]:
        """Headers that route a data-plane request to this session (pass to requests/httpx):
        its token, if any, and the client's tenant key (``X-Herd-Key``), if it has one."""
        h = {SESSION_HEADER: self.id}
        if self.token:
            h[TOKEN_HEADER] = self.token
        if self._key is not None:
            h[KEY_HEADER] = self._key
        return h


@dataclass(frozen=True)
class HoldStart:
    """The first message of a HoldSession stream, checked."""

    session: pb.Session
    hold_id: str
    grace: float  # seconds; 0: the daemon wants no renewals


class RenewClock:
    """When to renew a hold, how long one renewal may take, and when to give up.

    Renewals start every third of the grace, so one lost renewal never ends the hold. A slow
    renewal may run until a whole grace has passed since the last success: a loaded daemon that
    still answers within the grace keeps the hold, and only a grace without any success, or a
    daemon that no longer knows the hold, ends it.
    """

    def __init__(self, grace: float) -> None:
        self.grace = grace
        self.every = max(grace / 3, 0.01)
        self._last_ok = time.monotonic()

    def remaining(self) -> float:
        """Seconds left of the grace since the daemon last showed the hold alive."""
        return self.grace - (time.monotonic() - self._last_ok)

    def backoff(self) -> Iterator[float]:
        """Delays before each re-attach attempt, doubling; they stop while one more would end
        past the grace since the last success (a grace of 0 leaves no window at all)."""
        delay = BACKOFF_FIRST_S
        while self.remaining() > delay:
            yield delay
            delay = min(delay * 2, BACKOFF_MAX_S)

    def gave_up(self, last: HerdError) -> HoldLostError:
        return HoldLostError(
            f"hold lost: not re-attached within {self.grace:g} s (heartbeat_grace): {last.message}",
            last.code,
        )

    def timeout_ms(self) -> int | None:
        remaining = self.grace - (time.monotonic() - self._last_ok)
        return timeout_ms(max(remaining, self.every))

    def renewed(self) -> None:
        """The daemon showed the hold alive: a renewal, a heartbeat, a re-attach."""
        self._last_ok = time.monotonic()

    def failed(self, e: ConnectError) -> HoldLostError | None:
        """The error that ends the hold after this failed renewal, or None to keep trying."""
        if e.code == Code.NOT_FOUND:
            return HoldLostError(f"hold refused by the daemon: {e.message}", e.code)
        if time.monotonic() - self._last_ok > self.grace:
            return HoldLostError(f"hold not renewed within the grace: {from_connect(e)}", e.code)
        return None


def hold_start(msg: pb.HoldSessionResponse | None) -> HoldStart:
    if msg is None or msg.WhichOneof("kind") != "session":
        raise HerdError("HoldSession stream did not start with the session", Code.INTERNAL)
    grace = msg.heartbeat_grace.ToMilliseconds() / 1000 if msg.HasField("heartbeat_grace") else 0
    return HoldStart(session=msg.session, hold_id=msg.hold_id, grace=grace)
