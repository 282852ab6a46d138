// Public surface of the cluster room (Redis-backed session directory across nodes). Only
// `herd serve` with a `cluster:` section loads it, lazily.

export { PeerAuth } from "./peer-auth.ts";
export { PeerClient } from "./peer-client.ts";
export {
  type ClusterAdoption,
  type ClusterHandOff,
  type StartedCluster,
  startCluster,
} from "./start-cluster.ts";
