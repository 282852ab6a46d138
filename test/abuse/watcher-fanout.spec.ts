// What a data-plane connection costs the daemon when many watch (issue 20): every connection
// used to send connection_opened / connection_closed to every watcher, so with 1,000 watchers
// 100 new data-plane connections cost 12-18 s of daemon CPU (0.1 s with none). Connection
// events are now opt-in (WatchSessionsRequest.connection_events) and visit only the watchers
// that asked, so the cost no longer grows with the watchers that did not; one that asks still
// gets every one of them.

import { get } from "node:http";
import { loadavg } from "node:os";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { describe, expect, it } from "vitest";
import { HerdService, SessionEventType } from "../../gen/herd/v1/herd_pb.ts";
import { daemonPerTest } from "../helpers/daemon-per-test.ts";
import { WORKER_FIXTURE } from "../helpers/worker.ts";
import { cpuSeconds, rssMiB } from "./daemon-usage.ts";
import { eventually } from "./raw-client.ts";

const WATCHERS = 1_000;
const CONNECTIONS = 100;
/** Watch streams per HTTP/2 connection: the control plane's default cap. */
const STREAMS_PER_CONNECTION = 100;

const ctx = daemonPerTest({
  control: { max_watchers_per_caller: 0 },
  workers: { w: { cmd: [process.execPath, WORKER_FIXTURE], min: 2, max: 2 } },
});

/** One data-plane request for `session` on a connection of its own, closed after; its status. */
function request(dataUrl: string, session: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = get(
      `${dataUrl}/echo`,
      { agent: false, headers: { "X-Session-ID": session } },
      (res) => {
        res.resume();
        res.once("end", () => resolve(res.statusCode ?? 0));
      },
    );
    req.once("error", reject);
  });
}

describe("data-plane connections and watchers", () => {
  it(`${CONNECTIONS} data-plane connections cost under 1 s of daemon CPU with ${WATCHERS} watchers`, async () => {
    const { daemon } = ctx;
    const stop = new AbortController();
    const client = () =>
      createClient(HerdService, createGrpcTransport({ baseUrl: daemon.controlUrl }));
    // The watchers fill their connections' streams: unary calls go on a connection of their own.
    const unary = client();
    const clients = Array.from({ length: WATCHERS / STREAMS_PER_CONNECTION + 1 }, client);
    await unary.acquireSession({ sessionId: "busy" });
    // Every watcher counts what it sees, and says when it has seen the sentinel's acquire:
    // events come in order, so by then it has been sent everything before it.
    const watchers = Array.from({ length: WATCHERS + 1 }, () => ({
      ready: false,
      connectionEvents: 0,
      sawSentinel: false,
    }));
    const watching = watchers.map(async (w, i) => {
      const askForConnections = i === WATCHERS; // the last one asks; the others do not
      try {
        for await (const e of clients[Math.floor(i / STREAMS_PER_CONNECTION)]!.watchSessions(
          { snapshot: true, connectionEvents: askForConnections },
          { signal: stop.signal },
        )) {
          if (e.type === SessionEventType.SNAPSHOT_COMPLETE) w.ready = true;
          if (
            e.type === SessionEventType.CONNECTION_OPENED ||
            e.type === SessionEventType.CONNECTION_CLOSED
          ) {
            w.connectionEvents++;
          }
          if (e.type === SessionEventType.SESSION_ACQUIRED && e.sessionId === "sentinel") {
            w.sawSentinel = true;
          }
        }
      } catch {
        // the test's end aborts every watch
      }
    });
    try {
      expect(
        await eventually(() => watchers.every((w) => w.ready), 120_000),
        "every watcher subscribed",
      ).toBe(true);
      const rssBefore = rssMiB(daemon.pid);
      const cpuBefore = cpuSeconds(daemon.pid);
      let notOk = 0;
      for (let i = 0; i < CONNECTIONS; i += 10) {
        const batch = Array.from({ length: 10 }, () => request(daemon.dataUrl, "busy"));
        // Each is answered (what the worker says does not matter here: the connection's events
        // are published either way, and that is what is measured).
        for (const status of await Promise.all(batch)) {
          expect(status).toBeGreaterThan(0);
          if (status !== 200) notOk++;
        }
      }
      // The watcher that asked gets them all (a pair per connection), once each has closed.
      expect(
        await eventually(() => watchers[WATCHERS]!.connectionEvents === 2 * CONNECTIONS, 60_000),
        "connection events of the watcher that asked for them",
      ).toBe(true);
      await unary.acquireSession({ sessionId: "sentinel" });
      expect(
        await eventually(() => watchers.every((w) => w.sawSentinel), 300_000),
        "every watcher saw the sentinel",
      ).toBe(true);
      const cpu = cpuSeconds(daemon.pid) - cpuBefore;
      const rss = rssMiB(daemon.pid);
      console.log(
        `${CONNECTIONS} data-plane connections, ${WATCHERS} watchers: daemon CPU ${cpu.toFixed(2)} s, RSS ${rssBefore.toFixed(0)} -> ${rss.toFixed(0)} MiB, ${notOk} answers not 200 (load ${loadavg()[0]!.toFixed(1)})`,
      );
      expect(cpu, "daemon CPU seconds").toBeLessThan(1);
      // The others none.
      expect(watchers.slice(0, WATCHERS).every((w) => w.connectionEvents === 0)).toBe(true);
    } finally {
      stop.abort();
      await Promise.all(watching);
    }
  }, 600_000);
});
