// Public surface of `network: egress` (a veth pair per worker, filtered by nftables in the
// host's namespace). The launcher in src/sandbox is its only user.
export { parseCidr } from "./cidr.ts";
export { egressProblem, sweepEgressOrphans } from "./egress-host.ts";
export { chooseNetwork, type NetworkChoice, PoolEgress } from "./pool-egress.ts";
export { adoptWorkerNet, type WorkerNet } from "./worker-net.ts";
