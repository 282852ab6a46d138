// Public surface of the cluster room (Redis-backed session directory across nodes). Only
// `herd serve` with a `cluster:` section loads it, lazily.

export { PeerAuth } from "./peer-auth.ts";
export { PeerClient } from "./peer-client.ts";
/** For tests that write a genuine record into Redis (a node's view they control). */
export { encodeSession } from "./session-codec.ts";
export { RecordKeys } from "./signed-record.ts";
export {
  type ClusterAdoption,
  type ClusterHandOff,
  type StartedCluster,
  startCluster,
} from "./start-cluster.ts";
