// Public surface of the sandbox launcher (tenant isolation of workers: uids, namespaces, mounts).
// src/pool knows only its SandboxFactory seam; src/cli/serve.ts wires this in.

export { PoolEgress, parseCidr, sweepEgressOrphans } from "./egress/index.ts";
export { HiddenSocket } from "./hidden-socket.ts";
export {
  type IsolationKey,
  type IsolationProblem,
  isolationProblems,
} from "./host-support.ts";
export { type LauncherOptions, sandboxLauncher } from "./launcher.ts";
export { scrubEnviron } from "./scrub-environ.ts";
export { workerPeer } from "./worker-peer.ts";
