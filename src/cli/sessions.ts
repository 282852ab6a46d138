// `herd sessions`: live sessions with their worker, age and activity, or JSON.

import { toJson } from "@bufbuild/protobuf";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { ListSessionsResponseSchema } from "../../gen/herd/v1/herd_pb.ts";
import { humanDuration, table } from "./table.ts";
import type { UnaryClient } from "./unary-client.ts";

export async function sessions(
  { client }: UnaryClient,
  opts: { pool?: string; json: boolean },
  out: (text: string) => void,
): Promise<void> {
  const res = await client.listSessions({ pool: opts.pool ?? "" });
  if (opts.json) {
    out(
      JSON.stringify(
        toJson(ListSessionsResponseSchema, res, { alwaysEmitImplicit: true }),
        null,
        2,
      ),
    );
    return;
  }
  if (res.sessions.length === 0) {
    out(opts.pool ? `no live sessions in pool ${opts.pool}` : "no live sessions");
    return;
  }
  const now = Date.now();
  const since = (t: Parameters<typeof timestampMs>[0] | undefined) =>
    t ? humanDuration(now - timestampMs(t)) : "-";
  out(
    table(
      ["SESSION", "POOL", "WORKER", "PID", "AGE", "IDLE", "CONNS", "WINDOW", "LABELS"],
      res.sessions.map((s) => [
        s.sessionId,
        s.pool,
        s.workerId,
        String(s.workerPid),
        since(s.createdAt),
        s.connections > 0 ? "busy" : since(s.lastActiveAt),
        String(s.connections),
        // A disconnected session: the time its client has left to come back.
        s.reconnectDeadline
          ? `${humanDuration(Math.max(0, timestampMs(s.reconnectDeadline) - now))} left`
          : "-",
        Object.entries(s.labels)
          .map(([k, v]) => `${k}=${v}`)
          .join(",") || "-",
      ]),
    ),
  );
}
