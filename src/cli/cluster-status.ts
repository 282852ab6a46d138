// `herd cluster status`: every node of the cluster (lease age, pools, capacity, sessions) and
// the cluster totals, from GetStats on any node; or the response as JSON.

import { durationMs, timestampMs } from "@bufbuild/protobuf/wkt";
import { statsJson } from "./status.ts";
import { humanDuration, table } from "./table.ts";
import type { UnaryClient } from "./unary-client.ts";

export async function clusterStatus(
  { client }: UnaryClient,
  opts: { pool?: string; json: boolean },
  out: (text: string) => void,
): Promise<void> {
  const stats = await client.getStats({ pool: opts.pool ?? "" });
  if (opts.json) {
    out(statsJson(stats));
    return;
  }
  if (stats.clusterNodes.length === 0) {
    out(
      stats.clusterNode === ""
        ? "this herd is not part of a cluster (no cluster section in its config)"
        : `node ${stats.clusterNode} is part of a cluster but has no node rows yet (still joining, or its Redis is unreachable)`,
    );
    return;
  }
  const now = Date.now();
  const rows = stats.clusterNodes.flatMap((n) => {
    const renewed = n.renewedAt ? `${humanDuration(now - timestampMs(n.renewedAt))} ago` : "-";
    const lease = n.lease ? humanDuration(durationMs(n.lease)) : "-";
    const pools = n.pools.length > 0 ? n.pools : [undefined];
    return pools.map((p) => [
      n.node,
      n.draining ? "DRAINING" : "SERVING",
      n.dataAddress,
      n.controlAddress,
      renewed,
      lease,
      p?.name ?? "-",
      p ? `${p.sessions}/${p.max}` : "-",
      p ? String(Math.max(0, p.max - p.sessions)) : "-",
      p ? String(p.queued) : "-",
    ]);
  });
  out(
    table(
      [
        "NODE",
        "STATE",
        "DATA",
        "CONTROL",
        "RENEWED",
        "LEASE",
        "POOL",
        "SESSIONS/MAX",
        "FREE",
        "QUEUED",
      ],
      rows,
    ),
  );
  out("");
  out(
    table(
      ["CLUSTER POOL", "NODES", "SESSIONS", "MAX", "QUEUED"],
      stats.clusterPools.map((p) => [
        p.name,
        String(stats.clusterNodes.filter((n) => n.pools.some((q) => q.name === p.name)).length),
        String(p.sessions),
        String(p.max),
        String(p.queued),
      ]),
    ),
  );
}
