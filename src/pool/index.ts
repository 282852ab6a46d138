// Public surface of the pool engine. Everything else in src/pool is private to it. The shared
// vocabulary it speaks (ids, errors, session and event types) lives in src/core.

export { ephemeralPort } from "./ephemeral-port.ts";
export { EventLog, MAX_EVENT_HISTORY, MAX_WATCH_BUFFER, matchesFilter } from "./event-log.ts";
export type { Tenant, TenantWeight } from "./fair-share.ts";
export type { HerdHandOff } from "./hand-over.ts";
export { Herd, type HerdOptions } from "./herd.ts";
export { type HostCapabilities, hostCapabilities, which } from "./host-capabilities.ts";
export { MAX_TIMER_MS } from "./long-timer.ts";
export {
  DEFAULT_ISOLATION,
  MAX_DURATION_TEXT,
  MAX_QUEUE_LIMIT,
  type PoolOptionsInput,
  resolvePoolOptions,
} from "./options.ts";
export type { PoolWorker, WorkerFactory, WorkerHooks, WorkerState } from "./pool-worker.ts";
export { type ProcStat, processRuns, procStat } from "./proc-stat.ts";
export { probeHttp } from "./readiness.ts";
export { Lifeline } from "./reaper.ts";
export { InMemorySessionRegistry, type SessionRegistry } from "./session-registry.ts";
export type {
  PoolSandbox,
  SandboxFactory,
  SandboxLaunch,
  SandboxLifeline,
  SandboxRecord,
} from "./worker-sandbox.ts";
