// The compiled daemon as users run it (`node bin/herd`, dist/): idle RSS beside a bare Node
// process, the start-up time of `herd --version` and `herd status` beside `node -e 0` (and
// `--version` beside itself without the checkout's dist/ freshness check), and
// the daemon's RSS per idle session at 0, 100 and 1000 sessions (workers that cost almost
// nothing themselves: a shell that prints "ready" and execs `sleep`, so only herd's own
// bookkeeping is measured). Timings are medians of runs interleaved with the baseline's.
//
// Standalone: `node --import tsx bench/runtime.ts [--quick]`
import { execFile, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { HerdService } from "../gen/herd/v1/herd_pb.ts";
import { type Daemon, REPO_ROOT, startDaemon } from "../test/helpers/daemon.ts";
import { type BenchRow, compared, formatTable, median, round } from "./report.ts";

const MiB = 1024 * 1024;

function rssBytes(pid: number): number {
  const kb = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
  return Number(kb) * 1024;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Wall time of one run of a command to its end, ms; fails on a non-zero exit. */
function timedRun(args: string[]): Promise<number> {
  const started = performance.now();
  return new Promise((resolve, reject) =>
    execFile(process.execPath, args, { cwd: REPO_ROOT }, (err) =>
      err ? reject(err) : resolve(performance.now() - started),
    ),
  );
}

async function idleRss(): Promise<BenchRow[]> {
  const daemon = await startDaemon({ config: "examples/demo/herd.yaml" });
  const bare = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" });
  try {
    // A little of everything the demo does, then idle.
    for (const id of ["a", "b", "a"]) {
      await (await fetch(`${daemon.dataUrl}/counter`, { headers: { "X-Session-ID": id } })).text();
    }
    await sleep(3000);
    return [
      compared(
        "daemon idle RSS (demo config, 2 sessions) vs bare node",
        rssBytes(daemon.pid) / MiB,
        "MiB",
        rssBytes(bare.pid!) / MiB,
        "≤ 64 MiB",
      ),
    ];
  } finally {
    bare.kill();
    await daemon.stop();
  }
}

async function startup(runs: number): Promise<BenchRow[]> {
  const daemon = await startDaemon({ config: "examples/demo/herd.yaml" });
  const bin = `${REPO_ROOT}/bin/herd`;
  const addr = daemon.controlUrl.replace("http://", "");
  const samples = {
    version: [] as number[],
    status: [] as number[],
    bare: [] as number[],
    unchecked: [] as number[],
  };
  try {
    await timedRun([bin, "--version"]); // dist/ is current before anything is timed
    for (let i = 0; i < runs; i++) {
      samples.bare.push(await timedRun(["-e", "0"]));
      samples.version.push(await timedRun([bin, "--version"]));
      // The same command without bin/herd's check that dist/ matches src/.
      samples.unchecked.push(await timedRun([`${REPO_ROOT}/dist/main.js`, "--version"]));
      samples.status.push(await timedRun([bin, "status", "--addr", addr]));
    }
  } finally {
    await daemon.stop();
  }
  const bare = median(samples.bare);
  return [
    compared(
      "herd --version start-up p50 vs node -e 0",
      median(samples.version),
      "ms",
      bare,
      "≤ 150 ms",
    ),
    compared(
      "herd --version p50 vs the same without the checkout's dist/ freshness check",
      median(samples.version),
      "ms",
      median(samples.unchecked),
    ),
    compared(
      "herd status start-up p50 vs node -e 0",
      median(samples.status),
      "ms",
      bare,
      "≤ 150 ms",
    ),
  ];
}

async function perSession(steps: number[]): Promise<BenchRow[]> {
  const max = Math.max(...steps);
  const daemon: Daemon = await startDaemon({
    config: {
      log: { level: "warn" },
      workers: {
        idle: {
          cmd: ["sh", "-c", "echo ready; exec sleep 100000"],
          ready: { stdout: "^ready$" },
          max,
          queue_limit: max,
          ttl: "1h",
        },
      },
    },
  });
  const client = createClient(
    HerdService,
    createConnectTransport({ baseUrl: daemon.controlUrl, httpVersion: "1.1" }),
  );
  const rows: BenchRow[] = [];
  try {
    let live = 0;
    let atZero = 0;
    for (const target of steps) {
      // 20 at a time: each is a worker spawn.
      while (live < target) {
        const batch = Math.min(20, target - live);
        await Promise.all(
          Array.from({ length: batch }, (_, i) =>
            client.acquireSession({ pool: "idle", sessionId: `s-${live + i}` }),
          ),
        );
        live += batch;
      }
      await sleep(2000);
      const rss = rssBytes(daemon.pid);
      if (target === 0) atZero = rss;
      rows.push({
        name: `daemon RSS at ${target} idle sessions${target ? ", per session above 0" : ""}`,
        value: round(target === 0 ? rss / MiB : (rss - atZero) / target / 1024),
        unit: target === 0 ? "MiB" : "KiB/session",
      });
    }
  } finally {
    await daemon.stop(60_000);
  }
  return rows;
}

export async function benchRuntime(opts: { quick?: boolean } = {}): Promise<BenchRow[]> {
  return [
    ...(await idleRss()),
    ...(await startup(opts.quick ? 10 : 30)),
    ...(await perSession(opts.quick ? [0, 100] : [0, 100, 1000])),
  ];
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  console.log(formatTable(await benchRuntime({ quick: process.argv.includes("--quick") })));
}
