// Public surface of the pool engine. Everything else in src/pool is private to it.

export { HerdError, type HerdErrorCode, isHerdError } from "./errors.ts";
export { Herd, type HerdOptions } from "./herd.ts";
export { type HostCapabilities, hostCapabilities } from "./host-capabilities.ts";
export { newSessionId, validateSessionId } from "./ids.ts";
export { type Logger, silentLogger } from "./logger.ts";
export { type DrainState, NodeDrain } from "./node-drain.ts";
export { DEFAULT_ISOLATION, type PoolOptionsInput, resolvePoolOptions } from "./options.ts";
export { InMemorySessionRegistry, type SessionRegistry } from "./session-registry.ts";
export type {
  AcquireOptions,
  ContainmentRow,
  EventFilter,
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
  SubscribeOptions,
  WorkerExit,
  WorkerUser,
} from "./types.ts";
export { withoutStderr } from "./worker.ts";
export {
  formatWorkerAddress,
  netConnectOptions,
  type WorkerEndpoint,
  workerEndpoint,
} from "./worker-endpoint.ts";
export type { PoolSandbox, SandboxFactory, SandboxLaunch } from "./worker-sandbox.ts";
