// `herd drain`: the daemon at --addr takes no new sessions, serves its live ones until they
// end or its drain_timeout passes, then stops (a cluster node leaves its cluster first). By
// default the command waits until the daemon has stopped, so a Kubernetes preStop hook (or a
// script that restarts the node next) runs it and then knows the node is gone; --no-wait
// returns once the drain has begun.

import { timestampMs } from "@bufbuild/protobuf/wkt";
import { DaemonCallError } from "./daemon-error.ts";
import type { UnaryClient } from "./unary-client.ts";

/** How much longer than the daemon's deadline the command waits for it to stop. */
const STOP_SLACK_MS = 30_000;

export async function drain(
  { client, where }: UnaryClient,
  opts: { wait: boolean; json: boolean },
  out: (text: string) => void,
): Promise<number> {
  const res = await client.drainNode({});
  const deadline = res.deadline ? timestampMs(res.deadline) : Date.now();
  if (opts.json) {
    out(
      JSON.stringify({
        started: res.started,
        sessions: res.sessions,
        deadline: new Date(deadline).toISOString(),
      }),
    );
  } else {
    out(
      `${res.started ? "draining" : "already draining"}: ${res.sessions} live session(s); the daemon at ${where} stops once they end, by ${new Date(deadline).toISOString()} at the latest`,
    );
  }
  if (!opts.wait) return 0;
  const giveUp = Math.max(deadline, Date.now()) + STOP_SLACK_MS;
  let last = res.sessions;
  while (Date.now() < giveUp) {
    await new Promise((r) => setTimeout(r, 250));
    try {
      const stats = await client.getStats({});
      const live = stats.pools.reduce((n, p) => n + p.sessions, 0);
      if (live !== last && !opts.json) out(`${live} live session(s) left`);
      last = live;
    } catch (err) {
      // Refused (stopped) or shutting down: either way the node is leaving now.
      if (err instanceof DaemonCallError && err.code === "Unavailable") {
        if (!opts.json) out("stopped");
        return 0;
      }
      throw err;
    }
  }
  throw new DaemonCallError(
    "DeadlineExceeded",
    `the daemon at ${where} was still running ${STOP_SLACK_MS / 1000}s after its drain deadline`,
  );
}
