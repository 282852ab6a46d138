// Fair share under a flood (issue 20): how long a light tenant's acquire waits while another
// tenant floods a full pool, with the queue as one FIFO (every acquire the operator's: the
// queue as it was before tenants, and as a single tenant still sees it) and with the flood and
// the light acquires as two tenants (round-robin by weight, acquire-queue.ts). Both arms run on
// one Herd, alternating round by round, so machine noise moves both alike.
//
//   flood  FLOODERS loops of tenant a: acquire, hold HOLD_MS, release, again (the pool's max is
//          MAX, so about FLOODERS - MAX acquires are always queued);
//   light  tenant b: one acquire every LIGHT_EVERY_MS, released at once; its wait is the sample.
//
// Goals: the light tenant's p50 at most a quarter of FIFO's (it waits about one freed worker,
// FIFO about the whole queue's turn), its p99 at most half.
//
// Standalone: `node --import tsx bench/fair-share.ts [--quick]`.

import { fileURLToPath } from "node:url";
import type { AcquireOptions } from "../src/core/index.ts";
import { Herd, resolvePoolOptions } from "../src/pool/index.ts";
import { WORKER_FIXTURE as WORKER } from "../test/helpers/worker.ts";
import { type BenchRow, compared, formatTable, load1, median, percentile } from "./report.ts";

const MAX = 4;
const FLOODERS = 32;
const HOLD_MS = 40;
const LIGHT_EVERY_MS = 250;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One arm for `seconds`: the light tenant's waits (ms). `tenants`: a and b, else all the operator's. */
async function arm(herd: Herd, tenants: boolean, seconds: number, seq: { n: number }) {
  const as = (tenant: string): AcquireOptions => ({
    waitMs: 120_000,
    ...(tenants ? { tenant } : {}),
  });
  let flooding = true;
  const flood = Array.from({ length: FLOODERS }, async () => {
    while (flooding) {
      const s = await herd.acquire("bench", `flood-${++seq.n}`, as("a"));
      await sleep(HOLD_MS);
      await herd.release(s.id);
    }
  });
  const waits: number[] = [];
  await sleep(500); // the queue fills
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end) {
    const started = performance.now();
    const s = await herd.acquire("bench", `light-${++seq.n}`, as("b"));
    waits.push(performance.now() - started);
    await herd.release(s.id);
    await sleep(LIGHT_EVERY_MS);
  }
  flooding = false;
  await Promise.all(flood);
  return waits;
}

export async function benchFairShare(opts: { quick?: boolean } = {}): Promise<BenchRow[]> {
  const rounds = opts.quick ? 2 : 4;
  const seconds = opts.quick ? 4 : 8;
  const herd = await Herd.start([
    resolvePoolOptions({
      name: "bench",
      command: [process.execPath, WORKER],
      healthPath: "/health",
      healthIntervalMs: 5_000,
      min: MAX,
      max: MAX,
      reuse: true,
      queueLimit: 1_000,
    }),
  ]);
  const fifo: number[] = [];
  const fair: number[] = [];
  const seq = { n: 0 };
  try {
    for (let r = 0; r < rounds; r++) {
      fifo.push(...(await arm(herd, false, seconds, seq)));
      fair.push(...(await arm(herd, true, seconds, seq)));
    }
  } finally {
    await herd.close();
  }
  const what = `light tenant's wait, ${FLOODERS} flooders on max ${MAX}, fair share vs FIFO`;
  return [
    compared(`${what} p50 (n ${fair.length})`, median(fair), "ms", median(fifo), "≤ 0.25 ×"),
    // The tail holds the machine's own stalls, which both arms share, hence a looser goal.
    compared(`${what} p99`, percentile(fair, 99), "ms", percentile(fifo, 99), "≤ 0.5 ×"),
  ];
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const before = load1();
  const rows = await benchFairShare({ quick: process.argv.includes("--quick") });
  console.log(formatTable(rows));
  console.log(`load average (1 min): ${before} before, ${load1()} after`);
}
