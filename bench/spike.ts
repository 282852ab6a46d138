// Start spike (issue 10, item 7): 100 concurrent acquires on an empty pool (max 150), vs a
// direct launch of the same 100 workers, in interleaved rounds of one run so host load moves
// both alike. Both sides wait for the same signal, the worker's "ready <port>" stdout line, so
// the ratio is herd's own cost of starting many workers at once (spawn wrapper, cgroup joins,
// port reservations), not a difference in readiness checks. Goal: ≤ 1.3×. The 1-minute load
// average is printed beside every round: on this 2-core host other work skews single rounds.
//
// Standalone: `node --import tsx bench/spike.ts [--rounds N] [--workers N] [--cpus X]`
// (--cpus sets a cpu limit on the pool, to see what joining the cpu controller costs).

import { spawn } from "node:child_process";
import { loadavg } from "node:os";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { Herd, resolvePoolOptions } from "../src/pool/index.ts";
import { WORKER_FIXTURE as WORKER } from "../test/helpers/worker.ts";
import { type BenchRow, compared, median, round } from "./report.ts";

const READY = { kind: "stdout", pattern: "^ready \\d+" } as const;

async function viaHerd(workers: number, cpus: number | undefined): Promise<number> {
  const herd = await Herd.start([
    resolvePoolOptions({
      name: "spike",
      command: [process.execPath, WORKER],
      ready: READY,
      min: 0,
      max: 150,
      reuse: false,
      queueLimit: workers,
      startTimeoutMs: 120_000,
      healthIntervalMs: 60_000,
      ...(cpus ? { limits: { cpus } } : {}),
    }),
  ]);
  try {
    const started = performance.now();
    await Promise.all(
      Array.from({ length: workers }, (_, i) =>
        herd.acquire("spike", `spike-${i}`, { waitMs: 120_000 }),
      ),
    );
    return performance.now() - started;
  } finally {
    await herd.close();
  }
}

async function direct(workers: number): Promise<number> {
  const started = performance.now();
  const children = Array.from({ length: workers }, () =>
    spawn(process.execPath, [WORKER], {
      env: { ...process.env, PORT: "0" },
      stdio: ["ignore", "pipe", "ignore"],
    }),
  );
  try {
    await Promise.all(
      children.map(
        (child) =>
          new Promise<void>((resolve, reject) => {
            child.once("exit", (code) => reject(new Error(`worker exited with ${code}`)));
            createInterface({ input: child.stdout! }).once("line", () => resolve());
          }),
      ),
    );
    return performance.now() - started;
  } finally {
    await Promise.all(
      children.map((child) =>
        child.exitCode !== null || child.signalCode !== null
          ? undefined
          : new Promise((r) => {
              child.once("exit", r);
              child.kill("SIGKILL");
            }),
      ),
    );
  }
}

export async function benchSpike(
  opts: { rounds?: number; workers?: number; cpus?: number; log?: (line: string) => void } = {},
): Promise<BenchRow[]> {
  const rounds = opts.rounds ?? 5;
  const workers = opts.workers ?? 100;
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const herdMs: number[] = [];
  const directMs: number[] = [];
  for (let round_ = 1; round_ <= rounds; round_++) {
    // Alternate which side goes first, so neither always inherits the other's aftermath.
    const order = round_ % 2 ? [true, false] : [false, true];
    for (const herdFirst of order) {
      const load = loadavg()[0]!.toFixed(2);
      if (herdFirst) {
        const ms = await viaHerd(workers, opts.cpus);
        herdMs.push(ms);
        log(`round ${round_}: herd   ${round(ms, 0)} ms (load1 ${load})`);
      } else {
        const ms = await direct(workers);
        directMs.push(ms);
        log(`round ${round_}: direct ${round(ms, 0)} ms (load1 ${load})`);
      }
    }
  }
  return [
    compared(
      `${workers} concurrent starts${opts.cpus ? ` (cpus ${opts.cpus})` : ""}, median of ${rounds}`,
      median(herdMs),
      "ms",
      median(directMs),
      "≤ 1.3 × direct",
    ),
  ];
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const arg = (name: string) => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? Number(process.argv[i + 1]) : undefined;
  };
  const { formatTable } = await import("./report.ts");
  const rows = await benchSpike({
    ...(arg("rounds") ? { rounds: arg("rounds")! } : {}),
    ...(arg("workers") ? { workers: arg("workers")! } : {}),
    ...(arg("cpus") ? { cpus: arg("cpus")! } : {}),
  });
  console.log(formatTable(rows));
  console.log(
    `load average now: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")}`,
  );
}
