// GetStats in a cluster: this node's own figures, plus a row per live node and each pool summed
// over the nodes, from the nodes' records as this node last read them (each at most one lease
// renewal old, so the sums lag the nodes by as much). Pure.

import type { HerdStats } from "../core/index.ts";
import type { NodeCapacity } from "./placement.ts";

/** The pool figures that add up across nodes (the rest are taken from the first node's row). */
const SUMMED = [
  "workersTotal",
  "workersIdle",
  "workersBusy",
  "workersStarting",
  "sessions",
  "queued",
  "min",
  "max",
  "warmTarget",
  "arrivalRate",
] as const;

/** `local` with its `cluster` part: the rows of `observed`, limited to `pool` if given. */
export function clusterStats(
  local: HerdStats,
  observed: readonly NodeCapacity[],
  pool?: string,
): HerdStats {
  const nodes = observed.map((r) => ({
    node: r.node,
    dataAddress: r.data,
    controlAddress: r.control,
    pools: r.stats.filter((p) => pool === undefined || p.name === pool),
    renewedAt: new Date(r.renewedAt),
    leaseMs: r.leaseMs,
    ...(r.draining === true && { draining: true }),
  }));
  const totals = new Map<string, HerdStats["pools"][number]>();
  for (const p of nodes.flatMap((n) => n.pools)) {
    const t = totals.get(p.name);
    if (!t) totals.set(p.name, { ...p });
    else for (const k of SUMMED) t[k] += p[k];
  }
  return { ...local, cluster: { nodes, pools: [...totals.values()] } };
}
