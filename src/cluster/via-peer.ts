// Whether the call being served came from another node. The control plane runs a verified
// node-to-node call inside `viaPeer.run(caller, …)` (start-cluster.ts hands it `PeerCalls.run`),
// and the cluster's directory reads it to serve such a call here or refuse it: a call that
// already crossed one hop is never forwarded again, so no call can loop between nodes.
//
// Concurrency: AsyncLocalStorage, so the mark follows the call through its awaits and no other.

import { AsyncLocalStorage } from "node:async_hooks";

/** Set while serving a node-to-node call: the calling node's name. */
export const viaPeer = new AsyncLocalStorage<string>();

/** Whether the call being served came from another node. */
export function forwarded(): boolean {
  return viaPeer.getStore() !== undefined;
}
