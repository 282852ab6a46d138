import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SessionEventType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SESSION_EVENT_TYPE_UNSPECIFIED: _ClassVar[SessionEventType]
    SESSION_EVENT_TYPE_SESSION_ACQUIRED: _ClassVar[SessionEventType]
    SESSION_EVENT_TYPE_SESSION_RELEASED: _ClassVar[SessionEventType]
    SESSION_EVENT_TYPE_SESSION_EXPIRED: _ClassVar[SessionEventType]
    SESSION_EVENT_TYPE_SESSION_LOST: _ClassVar[SessionEventType]
    SESSION_EVENT_TYPE_WORKER_STARTED: _ClassVar[SessionEventType]
    SESSION_EVENT_TYPE_WORKER_STOPPED: _ClassVar[SessionEventType]
    SESSION_EVENT_TYPE_WORKER_UNHEALTHY: _ClassVar[SessionEventType]
    SESSION_EVENT_TYPE_QUEUE_CHANGED: _ClassVar[SessionEventType]
    SESSION_EVENT_TYPE_CONNECTION_OPENED: _ClassVar[SessionEventType]
    SESSION_EVENT_TYPE_CONNECTION_CLOSED: _ClassVar[SessionEventType]
    SESSION_EVENT_TYPE_SNAPSHOT: _ClassVar[SessionEventType]
    SESSION_EVENT_TYPE_SNAPSHOT_COMPLETE: _ClassVar[SessionEventType]
    SESSION_EVENT_TYPE_WARM_TARGET_CHANGED: _ClassVar[SessionEventType]

class NodeState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NODE_STATE_UNSPECIFIED: _ClassVar[NodeState]
    NODE_STATE_SERVING: _ClassVar[NodeState]
    NODE_STATE_DRAINING: _ClassVar[NodeState]
SESSION_EVENT_TYPE_UNSPECIFIED: SessionEventType
SESSION_EVENT_TYPE_SESSION_ACQUIRED: SessionEventType
SESSION_EVENT_TYPE_SESSION_RELEASED: SessionEventType
SESSION_EVENT_TYPE_SESSION_EXPIRED: SessionEventType
SESSION_EVENT_TYPE_SESSION_LOST: SessionEventType
SESSION_EVENT_TYPE_WORKER_STARTED: SessionEventType
SESSION_EVENT_TYPE_WORKER_STOPPED: SessionEventType
SESSION_EVENT_TYPE_WORKER_UNHEALTHY: SessionEventType
SESSION_EVENT_TYPE_QUEUE_CHANGED: SessionEventType
SESSION_EVENT_TYPE_CONNECTION_OPENED: SessionEventType
SESSION_EVENT_TYPE_CONNECTION_CLOSED: SessionEventType
SESSION_EVENT_TYPE_SNAPSHOT: SessionEventType
SESSION_EVENT_TYPE_SNAPSHOT_COMPLETE: SessionEventType
SESSION_EVENT_TYPE_WARM_TARGET_CHANGED: SessionEventType
NODE_STATE_UNSPECIFIED: NodeState
NODE_STATE_SERVING: NodeState
NODE_STATE_DRAINING: NodeState

class TailSessionLogsRequest(_message.Message):
    __slots__ = ("session_id", "follow")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    follow: bool
    def __init__(self, session_id: _Optional[str] = ..., follow: _Optional[bool] = ...) -> None: ...

class TailSessionLogsResponse(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    def __init__(self, data: _Optional[bytes] = ...) -> None: ...

class SessionUsage(_message.Message):
    __slots__ = ("cpu_seconds", "memory_peak_bytes", "rx_bytes", "tx_bytes")
    CPU_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_PEAK_BYTES_FIELD_NUMBER: _ClassVar[int]
    RX_BYTES_FIELD_NUMBER: _ClassVar[int]
    TX_BYTES_FIELD_NUMBER: _ClassVar[int]
    cpu_seconds: float
    memory_peak_bytes: int
    rx_bytes: int
    tx_bytes: int
    def __init__(self, cpu_seconds: _Optional[float] = ..., memory_peak_bytes: _Optional[int] = ..., rx_bytes: _Optional[int] = ..., tx_bytes: _Optional[int] = ...) -> None: ...

class Session(_message.Message):
    __slots__ = ("session_id", "pool", "worker_id", "worker_pid", "data_plane_url", "token", "created_at", "last_active_at", "expires_at", "connections", "labels", "reconnect_deadline", "node", "usage", "tenant")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    POOL_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    WORKER_PID_FIELD_NUMBER: _ClassVar[int]
    DATA_PLANE_URL_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_ACTIVE_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    CONNECTIONS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    RECONNECT_DEADLINE_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    pool: str
    worker_id: str
    worker_pid: int
    data_plane_url: str
    token: str
    created_at: _timestamp_pb2.Timestamp
    last_active_at: _timestamp_pb2.Timestamp
    expires_at: _timestamp_pb2.Timestamp
    connections: int
    labels: _containers.ScalarMap[str, str]
    reconnect_deadline: _timestamp_pb2.Timestamp
    node: str
    usage: SessionUsage
    tenant: str
    def __init__(self, session_id: _Optional[str] = ..., pool: _Optional[str] = ..., worker_id: _Optional[str] = ..., worker_pid: _Optional[int] = ..., data_plane_url: _Optional[str] = ..., token: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_active_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., connections: _Optional[int] = ..., labels: _Optional[_Mapping[str, str]] = ..., reconnect_deadline: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., node: _Optional[str] = ..., usage: _Optional[_Union[SessionUsage, _Mapping]] = ..., tenant: _Optional[str] = ...) -> None: ...

class AcquireSessionRequest(_message.Message):
    __slots__ = ("pool", "session_id", "wait", "labels", "request_id")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    POOL_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    WAIT_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    pool: str
    session_id: str
    wait: _duration_pb2.Duration
    labels: _containers.ScalarMap[str, str]
    request_id: str
    def __init__(self, pool: _Optional[str] = ..., session_id: _Optional[str] = ..., wait: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., labels: _Optional[_Mapping[str, str]] = ..., request_id: _Optional[str] = ...) -> None: ...

class AcquireSessionResponse(_message.Message):
    __slots__ = ("session",)
    SESSION_FIELD_NUMBER: _ClassVar[int]
    session: Session
    def __init__(self, session: _Optional[_Union[Session, _Mapping]] = ...) -> None: ...

class ReleaseSessionRequest(_message.Message):
    __slots__ = ("session_id", "kill")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    KILL_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    kill: bool
    def __init__(self, session_id: _Optional[str] = ..., kill: _Optional[bool] = ...) -> None: ...

class ReleaseSessionResponse(_message.Message):
    __slots__ = ("session",)
    SESSION_FIELD_NUMBER: _ClassVar[int]
    session: Session
    def __init__(self, session: _Optional[_Union[Session, _Mapping]] = ...) -> None: ...

class HoldSessionRequest(_message.Message):
    __slots__ = ("pool", "session_id", "wait", "labels", "attach_only")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    POOL_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    WAIT_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    ATTACH_ONLY_FIELD_NUMBER: _ClassVar[int]
    pool: str
    session_id: str
    wait: _duration_pb2.Duration
    labels: _containers.ScalarMap[str, str]
    attach_only: bool
    def __init__(self, pool: _Optional[str] = ..., session_id: _Optional[str] = ..., wait: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., labels: _Optional[_Mapping[str, str]] = ..., attach_only: _Optional[bool] = ...) -> None: ...

class HoldSessionResponse(_message.Message):
    __slots__ = ("session", "heartbeat", "hold_id", "heartbeat_grace")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    HOLD_ID_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_GRACE_FIELD_NUMBER: _ClassVar[int]
    session: Session
    heartbeat: Heartbeat
    hold_id: str
    heartbeat_grace: _duration_pb2.Duration
    def __init__(self, session: _Optional[_Union[Session, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., hold_id: _Optional[str] = ..., heartbeat_grace: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("time", "hold_expires_at")
    TIME_FIELD_NUMBER: _ClassVar[int]
    HOLD_EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    time: _timestamp_pb2.Timestamp
    hold_expires_at: _timestamp_pb2.Timestamp
    def __init__(self, time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., hold_expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RenewHoldRequest(_message.Message):
    __slots__ = ("session_id", "hold_id")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    HOLD_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    hold_id: str
    def __init__(self, session_id: _Optional[str] = ..., hold_id: _Optional[str] = ...) -> None: ...

class RenewHoldResponse(_message.Message):
    __slots__ = ("hold_expires_at",)
    HOLD_EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    hold_expires_at: _timestamp_pb2.Timestamp
    def __init__(self, hold_expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class WatchSessionsRequest(_message.Message):
    __slots__ = ("pool", "session_id", "snapshot", "since_revision", "connection_events")
    POOL_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    SINCE_REVISION_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_EVENTS_FIELD_NUMBER: _ClassVar[int]
    pool: str
    session_id: str
    snapshot: bool
    since_revision: int
    connection_events: bool
    def __init__(self, pool: _Optional[str] = ..., session_id: _Optional[str] = ..., snapshot: _Optional[bool] = ..., since_revision: _Optional[int] = ..., connection_events: _Optional[bool] = ...) -> None: ...

class WorkerExit(_message.Message):
    __slots__ = ("exit_code", "signal", "oom", "stderr_tail")
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_FIELD_NUMBER: _ClassVar[int]
    OOM_FIELD_NUMBER: _ClassVar[int]
    STDERR_TAIL_FIELD_NUMBER: _ClassVar[int]
    exit_code: int
    signal: str
    oom: bool
    stderr_tail: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, exit_code: _Optional[int] = ..., signal: _Optional[str] = ..., oom: _Optional[bool] = ..., stderr_tail: _Optional[_Iterable[str]] = ...) -> None: ...

class SessionEvent(_message.Message):
    __slots__ = ("revision", "type", "session", "worker_id", "reason", "time", "pool", "session_id", "worker_pid", "exit", "queued", "node", "warm_target", "tenant")
    REVISION_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    SESSION_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    POOL_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    WORKER_PID_FIELD_NUMBER: _ClassVar[int]
    EXIT_FIELD_NUMBER: _ClassVar[int]
    QUEUED_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    WARM_TARGET_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    revision: int
    type: SessionEventType
    session: Session
    worker_id: str
    reason: str
    time: _timestamp_pb2.Timestamp
    pool: str
    session_id: str
    worker_pid: int
    exit: WorkerExit
    queued: int
    node: str
    warm_target: int
    tenant: str
    def __init__(self, revision: _Optional[int] = ..., type: _Optional[_Union[SessionEventType, str]] = ..., session: _Optional[_Union[Session, _Mapping]] = ..., worker_id: _Optional[str] = ..., reason: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., pool: _Optional[str] = ..., session_id: _Optional[str] = ..., worker_pid: _Optional[int] = ..., exit: _Optional[_Union[WorkerExit, _Mapping]] = ..., queued: _Optional[int] = ..., node: _Optional[str] = ..., warm_target: _Optional[int] = ..., tenant: _Optional[str] = ...) -> None: ...

class GetStatsRequest(_message.Message):
    __slots__ = ("pool",)
    POOL_FIELD_NUMBER: _ClassVar[int]
    pool: str
    def __init__(self, pool: _Optional[str] = ...) -> None: ...

class GetStatsResponse(_message.Message):
    __slots__ = ("pools", "node", "instance_id", "cluster_nodes", "cluster_pools", "state", "cluster_node", "tenants")
    POOLS_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_NODES_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_POOLS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_NODE_FIELD_NUMBER: _ClassVar[int]
    TENANTS_FIELD_NUMBER: _ClassVar[int]
    pools: _containers.RepeatedCompositeFieldContainer[PoolStats]
    node: NodeStats
    instance_id: str
    cluster_nodes: _containers.RepeatedCompositeFieldContainer[ClusterNodeStats]
    cluster_pools: _containers.RepeatedCompositeFieldContainer[PoolStats]
    state: NodeState
    cluster_node: str
    tenants: _containers.RepeatedCompositeFieldContainer[TenantStats]
    def __init__(self, pools: _Optional[_Iterable[_Union[PoolStats, _Mapping]]] = ..., node: _Optional[_Union[NodeStats, _Mapping]] = ..., instance_id: _Optional[str] = ..., cluster_nodes: _Optional[_Iterable[_Union[ClusterNodeStats, _Mapping]]] = ..., cluster_pools: _Optional[_Iterable[_Union[PoolStats, _Mapping]]] = ..., state: _Optional[_Union[NodeState, str]] = ..., cluster_node: _Optional[str] = ..., tenants: _Optional[_Iterable[_Union[TenantStats, _Mapping]]] = ...) -> None: ...

class TenantStats(_message.Message):
    __slots__ = ("name", "sessions", "max_sessions", "acquire_rate", "weight", "queued", "pools")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    MAX_SESSIONS_FIELD_NUMBER: _ClassVar[int]
    ACQUIRE_RATE_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    QUEUED_FIELD_NUMBER: _ClassVar[int]
    POOLS_FIELD_NUMBER: _ClassVar[int]
    name: str
    sessions: int
    max_sessions: int
    acquire_rate: float
    weight: int
    queued: int
    pools: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., sessions: _Optional[int] = ..., max_sessions: _Optional[int] = ..., acquire_rate: _Optional[float] = ..., weight: _Optional[int] = ..., queued: _Optional[int] = ..., pools: _Optional[_Iterable[str]] = ...) -> None: ...

class DrainNodeRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DrainNodeResponse(_message.Message):
    __slots__ = ("sessions", "deadline", "started")
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_FIELD_NUMBER: _ClassVar[int]
    STARTED_FIELD_NUMBER: _ClassVar[int]
    sessions: int
    deadline: _timestamp_pb2.Timestamp
    started: bool
    def __init__(self, sessions: _Optional[int] = ..., deadline: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., started: _Optional[bool] = ...) -> None: ...

class RestartNodeRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RestartNodeResponse(_message.Message):
    __slots__ = ("pid", "previous_pid", "sessions")
    PID_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_PID_FIELD_NUMBER: _ClassVar[int]
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    pid: int
    previous_pid: int
    sessions: int
    def __init__(self, pid: _Optional[int] = ..., previous_pid: _Optional[int] = ..., sessions: _Optional[int] = ...) -> None: ...

class ClusterNodeStats(_message.Message):
    __slots__ = ("node", "data_address", "control_address", "pools", "renewed_at", "lease", "draining")
    NODE_FIELD_NUMBER: _ClassVar[int]
    DATA_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    CONTROL_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    POOLS_FIELD_NUMBER: _ClassVar[int]
    RENEWED_AT_FIELD_NUMBER: _ClassVar[int]
    LEASE_FIELD_NUMBER: _ClassVar[int]
    DRAINING_FIELD_NUMBER: _ClassVar[int]
    node: str
    data_address: str
    control_address: str
    pools: _containers.RepeatedCompositeFieldContainer[PoolStats]
    renewed_at: _timestamp_pb2.Timestamp
    lease: _duration_pb2.Duration
    draining: bool
    def __init__(self, node: _Optional[str] = ..., data_address: _Optional[str] = ..., control_address: _Optional[str] = ..., pools: _Optional[_Iterable[_Union[PoolStats, _Mapping]]] = ..., renewed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., lease: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., draining: _Optional[bool] = ...) -> None: ...

class PoolStats(_message.Message):
    __slots__ = ("name", "workers_total", "workers_idle", "workers_busy", "workers_starting", "sessions", "queued", "min", "max", "crash_streak", "restart_backoff", "last_crash", "containment", "warm_target", "arrival_rate", "boot_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    WORKERS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    WORKERS_IDLE_FIELD_NUMBER: _ClassVar[int]
    WORKERS_BUSY_FIELD_NUMBER: _ClassVar[int]
    WORKERS_STARTING_FIELD_NUMBER: _ClassVar[int]
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    QUEUED_FIELD_NUMBER: _ClassVar[int]
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    CRASH_STREAK_FIELD_NUMBER: _ClassVar[int]
    RESTART_BACKOFF_FIELD_NUMBER: _ClassVar[int]
    LAST_CRASH_FIELD_NUMBER: _ClassVar[int]
    CONTAINMENT_FIELD_NUMBER: _ClassVar[int]
    WARM_TARGET_FIELD_NUMBER: _ClassVar[int]
    ARRIVAL_RATE_FIELD_NUMBER: _ClassVar[int]
    BOOT_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    workers_total: int
    workers_idle: int
    workers_busy: int
    workers_starting: int
    sessions: int
    queued: int
    min: int
    max: int
    crash_streak: int
    restart_backoff: _duration_pb2.Duration
    last_crash: str
    containment: _containers.RepeatedCompositeFieldContainer[Containment]
    warm_target: int
    arrival_rate: float
    boot_time: _duration_pb2.Duration
    def __init__(self, name: _Optional[str] = ..., workers_total: _Optional[int] = ..., workers_idle: _Optional[int] = ..., workers_busy: _Optional[int] = ..., workers_starting: _Optional[int] = ..., sessions: _Optional[int] = ..., queued: _Optional[int] = ..., min: _Optional[int] = ..., max: _Optional[int] = ..., crash_streak: _Optional[int] = ..., restart_backoff: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., last_crash: _Optional[str] = ..., containment: _Optional[_Iterable[_Union[Containment, _Mapping]]] = ..., warm_target: _Optional[int] = ..., arrival_rate: _Optional[float] = ..., boot_time: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class Containment(_message.Message):
    __slots__ = ("key", "got", "state", "note")
    KEY_FIELD_NUMBER: _ClassVar[int]
    GOT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    key: str
    got: str
    state: str
    note: str
    def __init__(self, key: _Optional[str] = ..., got: _Optional[str] = ..., state: _Optional[str] = ..., note: _Optional[str] = ...) -> None: ...

class NodeStats(_message.Message):
    __slots__ = ("memory_total_bytes", "memory_available_bytes", "cpu_idle", "load1")
    MEMORY_TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_AVAILABLE_BYTES_FIELD_NUMBER: _ClassVar[int]
    CPU_IDLE_FIELD_NUMBER: _ClassVar[int]
    LOAD1_FIELD_NUMBER: _ClassVar[int]
    memory_total_bytes: int
    memory_available_bytes: int
    cpu_idle: float
    load1: float
    def __init__(self, memory_total_bytes: _Optional[int] = ..., memory_available_bytes: _Optional[int] = ..., cpu_idle: _Optional[float] = ..., load1: _Optional[float] = ...) -> None: ...

class ListSessionsRequest(_message.Message):
    __slots__ = ("pool",)
    POOL_FIELD_NUMBER: _ClassVar[int]
    pool: str
    def __init__(self, pool: _Optional[str] = ...) -> None: ...

class ListSessionsResponse(_message.Message):
    __slots__ = ("sessions",)
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    sessions: _containers.RepeatedCompositeFieldContainer[Session]
    def __init__(self, sessions: _Optional[_Iterable[_Union[Session, _Mapping]]] = ...) -> None: ...
