// `herd status`: pools and node at a glance, or the GetStats response as JSON.

import { toJson } from "@bufbuild/protobuf";
import { GetStatsResponseSchema } from "../../gen/herd/v1/herd_pb.ts";
import type { HerdClient } from "./client.ts";
import { humanBytes, table } from "./table.ts";

export async function status(
  { client }: HerdClient,
  opts: { pool?: string; json: boolean },
  out: (text: string) => void,
): Promise<void> {
  const stats = await client.getStats({ pool: opts.pool ?? "" });
  if (opts.json) {
    out(
      JSON.stringify(toJson(GetStatsResponseSchema, stats, { alwaysEmitImplicit: true }), null, 2),
    );
    return;
  }
  out(
    table(
      ["POOL", "WORKERS", "IDLE", "BUSY", "STARTING", "SESSIONS", "QUEUED", "MIN", "MAX"],
      stats.pools.map((p) =>
        [
          p.name,
          p.workersTotal,
          p.workersIdle,
          p.workersBusy,
          p.workersStarting,
          p.sessions,
          p.queued,
          p.min,
          p.max,
        ].map(String),
      ),
    ),
  );
  const n = stats.node;
  if (n) {
    out(
      `\nnode: ${humanBytes(Number(n.memoryAvailableBytes))} of ${humanBytes(Number(n.memoryTotalBytes))} memory available, CPU ${Math.round(n.cpuIdle * 100)}% idle, load ${n.load1.toFixed(2)}`,
    );
  }
}
