// Where a new session goes: this node when it has an idle (warm) worker of the pool, else the
// node with the most idle workers and a free slot (a worker ready now beats a cold start here,
// which for a browser is seconds against a hop's milliseconds), else this node when it has a
// free slot, else the node with the most free slots, else (nobody has one) this node's FIFO
// queue when it runs the pool, else the least-queued node that runs it. A node without the
// pool is never chosen for it.
// Capacity comes from the nodes' lease records, so it is at most one renewal old: a node that
// filled up meanwhile queues the acquire (FIFO, visible in its GetStats) rather than bouncing
// it on. A draining node (its record says so) takes no new session, not even queued ones.
// Pure and synchronous: the caller reserves the chosen slot before anything else runs.

import type { PoolStats } from "../core/index.ts";
import { HerdError } from "../core/index.ts";
import type { NodeAddresses } from "./session-codec.ts";

export interface PoolCapacity {
  /** Sessions the pool can still take without queueing. */
  free: number;
  queued: number;
  max: number;
}

/** A node's lease record (JSON in herd:alive:{node}). */
export interface NodeCapacity extends NodeAddresses {
  pools: Record<string, PoolCapacity>;
  /** The node's full pool rows, for GetStats and `herd cluster status`. */
  stats: PoolStats[];
  /** Epoch ms of the renewal that wrote this record. */
  renewedAt: number;
  leaseMs: number;
  /** The node is draining (`herd drain`, SIGTERM): it takes no new sessions. */
  draining?: boolean;
  /**
   * The node accepts relay hops (src/dataplane/relay-hop.ts). A herd from before them does not
   * say so, and is forwarded to one hop instead: a rolling upgrade never sends it a preamble.
   */
  relay?: boolean;
}

/** Idle workers of `pool` on `n` as its record last said (0 when unknown). */
export function idleOn(n: NodeCapacity, pool: string): number {
  return n.stats.find((s) => s.name === pool)?.workersIdle ?? 0;
}

export function placeAcquire(
  pool: string,
  here: NodeCapacity | undefined,
  others: NodeCapacity[],
): NodeCapacity | undefined {
  const self = here?.node;
  const drainingHere = here?.draining === true && here.pools[pool] !== undefined;
  if (here?.draining) here = undefined;
  const freeHere = (here?.pools[pool]?.free ?? 0) > 0;
  if (here && freeHere && idleOn(here, pool) > 0) return here;
  const runIt = others.filter((n) => n.node !== self && n.pools?.[pool] !== undefined);
  const candidates = runIt.filter((n) => !n.draining);
  let warm: NodeCapacity | undefined;
  for (const n of candidates) {
    if (n.pools[pool]!.free > 0 && idleOn(n, pool) > (warm ? idleOn(warm, pool) : 0)) warm = n;
  }
  if (warm) return warm;
  if (here && freeHere) return here;
  let best: NodeCapacity | undefined;
  for (const n of candidates) {
    if (n.pools[pool]!.free > (best?.pools[pool]?.free ?? 0)) best = n;
  }
  if (best) return best;
  if (here?.pools[pool]) return here;
  const leastQueued = candidates.sort(
    (a, b) =>
      a.pools[pool]!.queued / a.pools[pool]!.max - b.pools[pool]!.queued / b.pools[pool]!.max,
  )[0];
  if (leastQueued) return leastQueued;
  if (drainingHere || runIt.length > 0) {
    throw new HerdError(
      "unavailable",
      `every node that runs pool ${JSON.stringify(pool)} is draining: no new sessions until one is back`,
    );
  }
  throw new HerdError(
    "not_found",
    `unknown pool ${JSON.stringify(pool)}: no node of the cluster runs it`,
  );
}
