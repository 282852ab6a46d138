// A worker that writes to stdout as fast as the pipe takes it (issue 20): the daemon reads a
// worker's output into a bounded ring at a paced rate (src/pool/output-ring.ts,
// worker-output.ts), so such a worker costs it bounded CPU. Before the ring it cost 4.9 s of
// daemon CPU in 10 s; the bound here (2 s in 10 s) is generous enough to hold at load 20.
// `npm run bench -- output-flood` measures the same from inside one process.

import { loadavg } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { describe, expect, it } from "vitest";
import { HerdService } from "../../gen/herd/v1/herd_pb.ts";
import { daemonPerTest } from "../helpers/daemon-per-test.ts";
import { WORKER_FIXTURE } from "../helpers/worker.ts";
import { cpuSeconds, rssMiB } from "./daemon-usage.ts";

const FLOOD_SECONDS = 10;
const CPU_LIMIT_SECONDS = 2;

/** Writes 64 KiB lines to stdout as fast as the pipe takes them (node waits out EAGAIN). */
const FLOOD = `const b = Buffer.alloc(65536, 97); b[65535] = 10;
(function w() { while (process.stdout.write(b)); process.stdout.once("drain", w); })();`;

const ctx = daemonPerTest({
  workers: {
    flood: {
      // The test worker answers health checks; the shell's exec'd node floods its stdout.
      cmd: [
        "sh",
        "-c",
        `${process.execPath} ${WORKER_FIXTURE} & exec ${process.execPath} -e '${FLOOD}'`,
      ],
      health_path: "/health",
      min: 0,
      max: 1,
      reuse: false,
    },
  },
});

describe("a worker flooding its stdout", () => {
  it(`costs the daemon under ${CPU_LIMIT_SECONDS} s of CPU in ${FLOOD_SECONDS} s`, async () => {
    const { daemon } = ctx;
    const client = createClient(
      HerdService,
      createConnectTransport({ baseUrl: daemon.controlUrl, httpVersion: "1.1" }),
    );
    await client.acquireSession({ sessionId: "flood-1" });
    // The flood reaches the daemon: the session's log holds its lines.
    const stop = new AbortController();
    let logged = 0;
    try {
      for await (const piece of client.tailSessionLogs(
        { sessionId: "flood-1", follow: true },
        { signal: stop.signal },
      )) {
        logged += piece.data.length;
        if (logged >= 65_536) break;
      }
    } finally {
      stop.abort();
    }
    expect(logged).toBeGreaterThanOrEqual(65_536);
    const before = cpuSeconds(daemon.pid);
    await sleep(FLOOD_SECONDS * 1000);
    const used = cpuSeconds(daemon.pid) - before;
    console.log(
      `daemon CPU over ${FLOOD_SECONDS} s of flood: ${used.toFixed(2)} s, RSS ${rssMiB(daemon.pid).toFixed(0)} MiB (load ${loadavg()[0]!.toFixed(1)})`,
    );
    expect(used, "daemon CPU seconds").toBeLessThan(CPU_LIMIT_SECONDS);
  }, 120_000);
});
