// What a cluster (src/cluster) and the planes agree on, so that neither imports the other: the
// header of a node-to-node credential, what the data plane asks of a cluster (ClusterRouting)
// and how the control plane authenticates another node's calls (PeerCalls). Without a
// cluster none of it is set.

import type { SessionInfo } from "./types.ts";

/** Node-to-node credential on a request another cluster node forwarded (never reaches a worker). */
export const PEER_HEADER = "x-herd-peer";

/**
 * On a node-to-node AcquireSession: the tenant the session is for (the node the client called
 * has checked the tenant's key, pools and quota). Honoured only on a genuine peer's call.
 */
export const PEER_TENANT_HEADER = "x-herd-tenant";

/**
 * What a directory spanning several nodes (the cluster's) offers the data plane beyond the
 * sessions this node knows. Handed to the data plane by whoever wires it (`herd serve`), so
 * its presence, not a sniffed method, is what "in a cluster" means there.
 */
export interface ClusterRouting {
  /**
   * The live session with this id wherever it runs, when `lookup` (which answers from what this
   * node knows now) has none.
   */
  find(sessionId: string): Promise<SessionInfo | undefined>;
  /**
   * Is `credential` (the X-Herd-Peer header of a request another node forwarded on the client
   * connection `connection`) genuine, and that connection's? Such a request is served here or
   * refused, never forwarded again.
   */
  verifyPeer(credential: string, connection: object): boolean;
  /**
   * The sending node and its client's address when `credential` (a relay preamble's, see
   * src/dataplane/relay-hop.ts) is genuine, for this node, fresh and unused; else why not.
   * Absent: this node accepts no relayed connection.
   */
  verifyRelay?(credential: string): { node: string; client: string } | { error: string };
  /**
   * Does `session`, which `lookup` answered earlier, still route as it did then: one of this
   * node's while this node's lease is valid (as `lookup` checks), another node's while that node
   * is live at the same data-plane address? Its end is its lease's signal, not asked here. For
   * the data plane's reuse of a connection's last session (no lookup per request).
   */
  current(session: SessionInfo): boolean;
}

/**
 * How a cluster authenticates node-to-node calls on the control plane. `Req` is the control
 * plane's request type (connect's), which core does not name.
 */
export interface PeerCalls<Req extends object = object> {
  /** Lower-case header carrying the credential. */
  header: string;
  /**
   * The calling node's name, and the request to run (its message may have been read to check
   * the credential's binding), when the credential is genuine; else undefined.
   */
  verify<R extends Req>(credential: string, req: R): Promise<{ node: string; req: R } | undefined>;
  /** Runs the handler knowing which node called (so it serves locally, never forwards again). */
  run<T>(node: string, handler: () => T): T;
}
