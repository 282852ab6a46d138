// What one HTTP/2 connection may hold open on the control plane (issue 20): a client that
// ignores SETTINGS_MAX_CONCURRENT_STREAMS and opens 15,000 WatchSessions streams (or 5,000
// HoldSession streams) on one connection used to get them all, and the daemon grew from 61 MB
// to 1.55 GB (holds: 450 MB) and kept it after the client left. Now the streams past
// control.max_streams_per_connection are refused, the daemon stays small, and what the
// streams held is given back when the client goes.

import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { daemonPerTest } from "../helpers/daemon-per-test.ts";
import { WORKER_FIXTURE } from "../helpers/worker.ts";
import { eventuallyAsync, openStreams, rssMiB } from "./daemon-usage.ts";
import { eventually } from "./raw-client.ts";
import { grpcMessage, H2_ERROR, rawHttp2 } from "./raw-http2.ts";

const RSS_LIMIT_MIB = 150;
/** control.max_streams_per_connection's default, which the daemon below runs with. */
const STREAM_CAP = 100;

const ctx = daemonPerTest({
  workers: { w: { cmd: [process.execPath, WORKER_FIXTURE], min: 0, max: 2 } },
});

const WATCH = "/herd.v1.HerdService/WatchSessions";
const HOLD = "/herd.v1.HerdService/HoldSession";
/** WatchSessionsRequest{snapshot: true}: answered at once (SNAPSHOT_COMPLETE), then held open. */
const WATCH_BODY = grpcMessage(Buffer.from([0x18, 0x01]));
/** HoldSessionRequest{session_id: "held", attach_only: true}. */
const HOLD_BODY = grpcMessage(Buffer.from([0x12, 0x04, ...Buffer.from("held"), 0x28, 0x01]));

describe("HTTP/2 streams per control-plane connection", () => {
  const attacks = [
    { rpc: "WatchSessions", path: WATCH, body: WATCH_BODY, streams: 15_000, kind: "watchers" },
    { rpc: "HoldSession", path: HOLD, body: HOLD_BODY, streams: 5_000, kind: "holds" },
  ] as const;
  for (const attack of attacks) {
    it(`refuses ${attack.rpc} streams past the cap: ${attack.streams} on one connection, RSS under ${RSS_LIMIT_MIB} MB`, async () => {
      const { daemon } = ctx;
      if (attack.kind === "holds") {
        const acquired = await fetch(`${daemon.controlUrl}/herd.v1.HerdService/AcquireSession`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ sessionId: "held" }),
        });
        expect(acquired.status).toBe(200);
      }
      const before = rssMiB(daemon.pid);
      const client = await rawHttp2(Number(new URL(daemon.controlUrl).port));
      let peak = before;
      try {
        // In batches, as fast as the socket takes them: the server sees them all at once.
        for (let sent = 0; sent < attack.streams && !client.closed; sent += 1000) {
          client.openStreams(Math.min(1000, attack.streams - sent), attack.path, attack.body);
          peak = Math.max(peak, rssMiB(daemon.pid));
          await sleep(10);
        }
        // Until the server has dealt with them: it disconnects a client that keeps opening
        // refused streams (old code: until every stream is answered).
        await eventually(() => {
          peak = Math.max(peak, rssMiB(daemon.pid));
          return client.closed || client.answered.size >= attack.streams;
        }, 60_000);
        expect(client.answered.size, "streams the daemon served").toBeLessThanOrEqual(STREAM_CAP);
        const refused = [...client.reset.values()].filter((c) => c === H2_ERROR.refusedStream);
        expect(refused.length, "streams refused (RST_STREAM REFUSED_STREAM)").toBeGreaterThan(0);
      } finally {
        client.close();
      }
      expect(peak, `daemon RSS (MiB; ${before.toFixed(0)} before)`).toBeLessThan(RSS_LIMIT_MIB);
      // The client went: every stream it had is over, and the daemon is no bigger for it.
      expect(
        await eventuallyAsync(
          async () => (await openStreams(daemon.controlUrl, attack.kind)) === 0,
          30_000,
        ),
        `${attack.kind} left open after the client went`,
      ).toBe(true);
      expect(rssMiB(daemon.pid)).toBeLessThan(RSS_LIMIT_MIB);
      // And the connection cap did not cost anyone else the service.
      const stats = await fetch(`${daemon.controlUrl}/herd.v1.HerdService/GetStats`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: "{}",
      });
      expect(stats.status).toBe(200);
    });
  }
});
