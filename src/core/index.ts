// The core room: herd's shared vocabulary, which every other room speaks and none owns. Ids,
// the error type and its one code table, the logging surface, the session, lease, event and
// stats shapes, the pool definition, the worker address format and the SessionDirectory
// contract between the pool engine and the planes. Plain data and small pure functions: core
// imports no other room.

export {
  type ClusterRouting,
  PEER_HEADER,
  PEER_TENANT_HEADER,
  type PeerCalls,
} from "./cluster.ts";
export { CONFIG_DEFAULTS } from "./defaults.ts";
export { type ErrorMapping, errorTable } from "./error-table.ts";
export { HerdError, type HerdErrorCode, isHerdError } from "./errors.ts";
export { NAME_PATTERN, newSessionId, newToken, validateSessionId } from "./ids.ts";
export {
  formatHostPort,
  isLoopback,
  LISTEN_HINT,
  type ListenAddress,
  listenClash,
  parseListenAddress,
} from "./listen-address.ts";
export { type Logger, silentLogger } from "./logger.ts";
export { builtNativeRelay, NATIVE_RELAY_PATH } from "./native-relay-binary.ts";
export { type DrainState, NodeDrain } from "./node-drain.ts";
export {
  type Caller,
  type MaxSessionsHold,
  MIN_TENANT_KEY_LENGTH,
  notYours,
  OPERATOR,
  type SharedMaxSessions,
  type SharedRates,
  sees,
  type Tenancy,
  type TenantOptions,
  type TenantUsage,
} from "./tenancy.ts";
export {
  type AcquireSpan,
  type RequestSpan,
  type TraceContext,
  type TracedRequest,
  type Tracer,
  tracingRequested,
} from "./tracing.ts";
export type {
  AcquireOptions,
  AcquireTiming,
  ClusterNodeStats,
  ContainmentRow,
  EventFilter,
  EventSource,
  EventSubscription,
  HerdEvent,
  HerdEventType,
  HerdStats,
  IsolationOptions,
  Lease,
  LeaseKind,
  NodeStats,
  PoolOptions,
  PoolStats,
  ReadyCheck,
  ReleaseOptions,
  ResourceLimits,
  SessionDirectory,
  SessionEnd,
  SessionInfo,
  SessionLogSource,
  SessionLogs,
  SessionOrigin,
  SessionRoutes,
  SessionTraffic,
  SessionUsage,
  SubscribeOptions,
  WorkerBoot,
  WorkerExit,
  WorkerUser,
} from "./types.ts";
export {
  formatWorkerAddress,
  netConnectOptions,
  RELAY_DIAL_SOCKET,
  RELAY_SOCKET,
  relayDialSocket,
  type WorkerEndpoint,
  workerEndpoint,
} from "./worker-endpoint.ts";
export { STDERR_MARK, withoutStderr } from "./worker-stderr.ts";
