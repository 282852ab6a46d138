// Demand-shaped pools (issue 23): replays arrival traces against a worker with a 300 ms boot
// (a shell that sleeps 300 ms, says "ready" and waits: the boot's time without its CPU, so
// that the three pools' starts do not load this 2-core host beyond what it already carries)
// under three policies at once — `min: 0`, a fixed
// `min: N` sized for the peak, and `warm: auto` — three pools of one Herd fed the same
// arrival times, so host load moves all three alike. Per trace and policy: acquire p50/p99,
// the share of acquires that waited for a boot, and idle worker-seconds (ready workers with no
// session, integrated over the trace; sampled every 50 ms).
//
// Time is compressed, and only time that can be: a day of demand becomes `DIURNAL_S` seconds,
// and the windows that follow demand are scaled with it (warm_window and idle_worker_ttl 5 s
// instead of the defaults' 60 s); the boot (300 ms) and the session hold times (exponential,
// mean 0.5 s) are real, since they are what a cold start costs. Each session gets a fresh
// worker (`reuse: false`, as the browser example): every acquire consumes a worker, the case
// where keeping workers warm matters. An acquire "waited for a boot" when it took ≥ 100 ms (a
// warm one takes well under 10 ms here; a boot 300 ms or more).
//
// Traces (arrivals from a seeded Poisson process, the same for every policy and run):
//   steady   4 new sessions/s for STEADY_S s;
//   diurnal  a day compressed to DIURNAL_S s: 0.25/s at night to 5/s at noon (a cosine);
//   burst    0.8/s, then 10× (8/s) for 5 s, then 0.8/s again.
//
// Standalone: `node --import tsx bench/demand.ts [--quick]`; in the suite: `npm run bench -- demand`.

import { loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import { Herd, type PoolOptionsInput, resolvePoolOptions } from "../src/pool/index.ts";
import { type BenchRow, compared, percentile, round } from "./report.ts";

const BOOT_MS = 300;
const HOLD_MEAN_S = 0.5;
/** What the demand windows become when a day is compressed to the diurnal trace. */
const SCALED_WINDOW_MS = 5_000;
const WAITED_MS = 100;

interface Trace {
  name: string;
  seconds: number;
  /** New sessions per second at `t` seconds into the trace. */
  rate(t: number): number;
  peak: number;
}

function traces(quick: boolean): Trace[] {
  const steady = quick ? 20 : 30;
  const day = quick ? 30 : 48;
  const burstAt = quick ? 8 : 12;
  return [
    { name: "steady", seconds: steady, rate: () => 4, peak: 4 },
    {
      name: "diurnal",
      seconds: day,
      rate: (t) => 0.25 + (5 - 0.25) * ((1 - Math.cos((2 * Math.PI * t) / day)) / 2),
      peak: 5,
    },
    {
      name: "burst",
      seconds: burstAt + 5 + 8,
      rate: (t) => (t >= burstAt && t < burstAt + 5 ? 8 : 0.8),
      peak: 8,
    },
  ];
}

/** mulberry32: a small seeded PRNG, so every policy and run replays the same arrivals. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Arrival {
  atMs: number;
  holdMs: number;
}

/** A non-homogeneous Poisson process by thinning (Lewis–Shedler), with exponential holds. */
function arrivalsOf(trace: Trace, seed: number): Arrival[] {
  const random = rng(seed);
  const out: Arrival[] = [];
  for (let t = 0; ; ) {
    t += -Math.log(1 - random()) / trace.peak;
    if (t >= trace.seconds) return out;
    if (random() * trace.peak <= trace.rate(t)) {
      out.push({ atMs: t * 1000, holdMs: -Math.log(1 - random()) * HOLD_MEAN_S * 1000 });
    }
  }
}

/** What warm: auto's formula wants at the peak, held all day: busy + idle for one boot. */
function fixedSize(peak: number): number {
  const busy = peak * HOLD_MEAN_S;
  const boot = (peak * (BOOT_MS + 100)) / 1000;
  return Math.ceil(busy + 2 * Math.sqrt(busy)) + Math.ceil(boot + 2 * Math.sqrt(boot));
}

interface Outcome {
  latencies: number[];
  idleWorkerSeconds: number;
  bootMs: number;
}

async function replay(
  trace: Trace,
  arrivals: Arrival[],
  log: (line: string) => void,
): Promise<Record<string, Outcome>> {
  const n = fixedSize(trace.peak);
  const base: Partial<PoolOptionsInput> = {
    command: ["/bin/sh", "-c", `sleep ${BOOT_MS / 1000}; echo ready; exec sleep 3600`],
    ready: { kind: "stdout", pattern: "^ready$" },
    max: 60,
    reuse: false,
    queueLimit: 1_000,
    startTimeoutMs: 120_000,
    acquireTimeoutMs: 120_000,
    healthIntervalMs: 60_000,
    idleWorkerTtlMs: SCALED_WINDOW_MS,
  };
  const policies: Record<string, Partial<PoolOptionsInput>> = {
    "min 0": { min: 0 },
    [`fixed min ${n}`]: { min: n },
    "warm auto": { min: 0, warm: "auto", warmWindowMs: SCALED_WINDOW_MS },
  };
  const names = Object.keys(policies);
  const herd = await Herd.start(
    names.map((label, i) =>
      resolvePoolOptions({ name: `p${i}`, ...base, ...policies[label], command: base.command! }),
    ),
  );
  try {
    const out: Record<string, Outcome> = {};
    for (const label of names) out[label] = { latencies: [], idleWorkerSeconds: 0, bootMs: 0 };
    let last = performance.now();
    const sampler = setInterval(() => {
      const now = performance.now();
      const pools = herd.stats().pools;
      names.forEach((label, i) => {
        out[label]!.idleWorkerSeconds += (pools[i]!.workersIdle * (now - last)) / 1000;
      });
      last = now;
    }, 50);
    const started = performance.now();
    const sessions: Promise<void>[] = [];
    let seq = 0;
    for (const a of arrivals) {
      const wait = started + a.atMs - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const id = seq++;
      names.forEach((label, i) => {
        sessions.push(
          (async () => {
            const t0 = performance.now();
            const s = await herd.acquire(`p${i}`, `p${i}-${trace.name}-${id}`);
            out[label]!.latencies.push(performance.now() - t0);
            await new Promise((r) => setTimeout(r, a.holdMs));
            await herd.release(s.id);
          })(),
        );
      });
    }
    const end = started + trace.seconds * 1000 - performance.now();
    if (end > 0) await new Promise((r) => setTimeout(r, end));
    clearInterval(sampler);
    await Promise.all(sessions);
    const pools = herd.stats().pools;
    names.forEach((label, i) => {
      out[label]!.bootMs = pools[i]!.bootMs;
    });
    log(
      `${trace.name}: ${arrivals.length} arrivals in ${trace.seconds} s, boot ${names.map((l) => `${l} ${out[l]!.bootMs} ms`).join(", ")} (load1 ${loadavg()[0]!.toFixed(2)})`,
    );
    return out;
  } finally {
    await herd.close();
  }
}

export async function benchDemand(
  opts: { quick?: boolean; log?: (line: string) => void } = {},
): Promise<BenchRow[]> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const rows: BenchRow[] = [];
  const row = (name: string, value: number, unit: string): BenchRow => ({
    name,
    value: round(value),
    unit,
  });
  for (const [k, trace] of traces(opts.quick ?? false).entries()) {
    const out = await replay(trace, arrivalsOf(trace, 23 + k), log);
    const [min0, fixed, auto] = Object.keys(out);
    const warmShare = (o: Outcome) =>
      (100 * o.latencies.filter((ms) => ms < WAITED_MS).length) / o.latencies.length;
    for (const label of [min0!, fixed!, auto!]) {
      const o = out[label]!;
      const name = `${trace.name}, ${label}`;
      rows.push(row(`${name}: acquire p50`, percentile(o.latencies, 50), "ms"));
      if (!(label === auto && trace.name === "burst")) {
        rows.push(row(`${name}: acquire p99`, percentile(o.latencies, 99), "ms"));
      }
      if (label === auto && trace.name !== "burst") {
        rows.push({ ...row(`${name}: warm acquires`, warmShare(o), "%"), goal: "≥ 90" });
      } else {
        rows.push(row(`${name}: warm acquires`, warmShare(o), "%"));
      }
      if (label === auto) {
        rows.push(
          compared(
            `${name}: idle worker-s (baseline: fixed)`,
            o.idleWorkerSeconds,
            "s",
            out[fixed!]!.idleWorkerSeconds,
            // On the steady trace the fixed pool is sized for the steady rate itself, which is
            // what warm: auto keeps too: the goal is about demand that varies.
            trace.name === "diurnal" ? "≤ 0.4 × fixed" : undefined,
          ),
        );
      } else {
        rows.push(row(`${name}: idle worker-s`, o.idleWorkerSeconds, "s"));
      }
    }
    if (trace.name === "burst") {
      rows.push(
        compared(
          `burst, warm auto: acquire p99 (baseline: fixed)`,
          percentile(out[auto!]!.latencies, 99),
          "ms",
          percentile(out[fixed!]!.latencies, 99),
          "≤ 2 × fixed",
        ),
      );
    }
  }
  return rows;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { formatTable, withVerdict } = await import("./report.ts");
  const rows = (await benchDemand({ quick: process.argv.includes("--quick") })).map(withVerdict);
  console.log(formatTable(rows));
  console.log(
    `load average now: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")}`,
  );
}
