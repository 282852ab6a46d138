// `herd status`: pools and node at a glance, or the GetStats response as JSON.

import { toJson } from "@bufbuild/protobuf";
import { durationMs } from "@bufbuild/protobuf/wkt";
import {
  type GetStatsResponse,
  GetStatsResponseSchema,
  NodeState,
} from "../../gen/herd/v1/herd_pb.ts";
import { humanBytes, table } from "./table.ts";
import type { UnaryClient } from "./unary-client.ts";

/** GetStats as JSON for scripts: every field, defaults included (`--json`). */
export function statsJson(stats: GetStatsResponse): string {
  return JSON.stringify(
    toJson(GetStatsResponseSchema, stats, { alwaysEmitImplicit: true }),
    null,
    2,
  );
}

export async function status(
  { client }: UnaryClient,
  opts: { pool?: string; json: boolean },
  out: (text: string) => void,
): Promise<void> {
  const stats = await client.getStats({ pool: opts.pool ?? "" });
  if (opts.json) {
    out(statsJson(stats));
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
  // A crash-looping pool gets its own line: the table has no room for why.
  for (const p of stats.pools) {
    if (p.crashStreak === 0) continue;
    const wait = p.restartBackoff ? durationMs(p.restartBackoff) : 0;
    out(
      `\n${p.name}: crash-looping, ${p.crashStreak} crashes in a row${wait > 0 ? `, next start in ${(wait / 1000).toFixed(1)} s` : ""}; last: ${p.lastCrash}`,
    );
  }
  // What a warm: auto pool keeps warm, and for what demand.
  for (const p of stats.pools) {
    if (p.warmTarget === 0 && p.arrivalRate === 0) continue;
    const boot = p.bootTime ? `${Math.round(durationMs(p.bootTime))} ms` : "not measured yet";
    out(
      `\n${p.name}: warm target ${p.warmTarget} idle, for ${p.arrivalRate.toFixed(2)} new sessions/s × boot ${boot}`,
    );
  }
  // What each pool's workers are contained by; what is less than the strongest, and why.
  for (const p of stats.pools) {
    if (p.containment.length === 0) continue;
    out(`\n${p.name} containment: ${p.containment.map((c) => `${c.key}: ${c.got}`).join("; ")}`);
    for (const c of p.containment) {
      if (c.state !== "full") out(`  ${c.key} ${c.state}: ${c.note}`);
    }
  }
  if (stats.state === NodeState.DRAINING) {
    out("\nDRAINING: this node takes no new sessions and stops once its live ones end");
  }
  const n = stats.node;
  if (n) {
    out(
      `\nnode: ${humanBytes(Number(n.memoryAvailableBytes))} of ${humanBytes(Number(n.memoryTotalBytes))} memory available, CPU ${Math.round(n.cpuIdle * 100)}% idle, load ${n.load1.toFixed(2)}`,
    );
  }
}
