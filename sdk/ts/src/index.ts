export { Code } from "@connectrpc/connect";
export type {
  GetStatsResponse,
  NodeStats,
  PoolStats,
  Session,
  SessionEvent,
  SessionUsage,
  WorkerExit,
} from "../gen/herd/v1/herd_pb.ts";
export { SessionEventType } from "../gen/herd/v1/herd_pb.ts";
export {
  type AcquireOptions,
  type CallControl,
  createHerdClient,
  type HerdClient,
  type HerdClientOptions,
  type HoldOptions,
  type TailLogsOptions,
  type WatchOptions,
} from "./client.ts";
export { codeName, HerdClientError } from "./errors.ts";
export { HeldSession } from "./hold.ts";
export { HerdSession, type ReleaseOptions } from "./session.ts";
