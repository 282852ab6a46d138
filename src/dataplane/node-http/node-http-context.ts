// What node:http's path uses beyond the shared ProxyContext: its per-worker agents
// (upstream-agents.ts). Built once by startDataPlane.

import type { ProxyContext } from "../proxy-context.ts";
import type { UpstreamAgents } from "./upstream-agents.ts";

export interface NodeHttpContext extends ProxyContext {
  /** node:http's upstream connections, one agent per worker. */
  agents: UpstreamAgents;
}
