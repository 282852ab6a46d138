// Tenant-isolation benchmarks (issues 9, 18): what the default containment (a pool with no
// `isolation`) and `isolation: {user: auto, network: private, filesystem: private}` add, against
// an `isolation: none` pool in the same run, rounds interleaved so machine noise moves every side
// alike:
//   cold start   acquire on a pool whose prepared spare is ready (reuse: false, so every acquire
//                starts a worker) minus the worker's self-reported boot time; the sandbox's
//                namespaces, mounts and relay are made at prepare time, so what is left is the
//                exec through setpriv and readiness through the relay;
//   request      a GET through a keep-alive connection (the data plane's upstream agents), and
//                one on a fresh connection each (the relay's cost per connection: socat forked per connection,
//                herd's native relay does not).
// The load average is printed beside: on a shared 2-core machine it explains outliers.
//
// Standalone (root, bubblewrap and herd's native relay or socat installed): `node --import tsx bench/isolation.ts [--runs N]`.

import { Agent, get } from "node:http";
import { loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import { workerEndpoint } from "../src/core/index.ts";
import { Herd, type PoolOptionsInput, resolvePoolOptions } from "../src/pool/index.ts";
import { sandboxLauncher } from "../src/sandbox/index.ts";
import { WORKER_FIXTURE as WORKER } from "../test/helpers/worker.ts";
import { type BenchRow, compared, formatTable, median, percentile, round } from "./report.ts";

const ISOLATED = { user: "auto", network: "private", filesystem: "private" } as const;
/** `isolation: none` in herd.yaml: the baseline. */
const NONE = { user: "inherit", network: "host", filesystem: "host" } as const;
/** The baseline first; each other pool is compared against it. */
const SIDES = { none: NONE, default: undefined, isolated: ISOLATED } as const;
type Side = keyof typeof SIDES;
const NAMES = Object.keys(SIDES) as Side[];

function sidePool(name: Side, overrides: Partial<PoolOptionsInput> = {}) {
  const isolation = SIDES[name];
  return resolvePoolOptions(pool(name, { ...overrides, ...(isolation ? { isolation } : {}) }));
}

/** Round i's order: a rotation, so no side always goes first. */
const order = <T>(items: readonly T[], i: number) =>
  items.map((_, k) => items[(k + i) % items.length]!);

function pool(name: string, overrides: Partial<PoolOptionsInput> = {}): PoolOptionsInput {
  return {
    name,
    command: [process.execPath, WORKER],
    healthPath: "/health",
    healthIntervalMs: 5_000,
    min: 0,
    max: 1,
    reuse: false,
    ...overrides,
  };
}

function getJson(address: string, path: string, agent: Agent | false): Promise<unknown> {
  return new Promise((resolve, reject) => {
    get({ ...workerEndpoint(address), path, agent }, (res) => {
      let body = "";
      res.setEncoding("utf8").on("data", (d: string) => {
        body += d;
      });
      res.on("end", () => resolve(JSON.parse(body)));
    }).on("error", reject);
  });
}

const bootMs = async (address: string) =>
  ((await getJson(address, "/whoami", false)) as { bootMs: number }).bootMs;

/** Waits until the pool's next worker is prepared again (the spare re-made after an acquire). */
const settle = () => new Promise((r) => setTimeout(r, 150));

async function coldStarts(runs: number, ready: "http" | "tcp"): Promise<BenchRow[]> {
  const readiness: Partial<PoolOptionsInput> = ready === "tcp" ? { ready: { kind: "tcp" } } : {};
  const herd = await Herd.start(
    NAMES.map((name) => sidePool(name, readiness)),
    { sandbox: sandboxLauncher() },
  );
  const cold: Record<Side, number[]> = { none: [], default: [], isolated: [] };
  try {
    await settle();
    for (let i = 0; i < runs; i++) {
      for (const name of order(NAMES, i)) {
        const started = performance.now();
        const s = await herd.acquire(name, `cold-${name}-${i}`);
        const elapsed = performance.now() - started;
        cold[name].push(elapsed - (await bootMs(s.workerAddress)));
        await herd.release(s.id);
        await settle();
      }
    }
  } finally {
    await herd.close();
  }
  return (["default", "isolated"] as const).flatMap((side) => {
    const label = `cold start overhead, ${ready} ready, ${side} vs none`;
    return [
      compared(`${label} p50`, median(cold[side]), "ms", median(cold.none), "≤ baseline + 15 ms"),
      compared(`${label} p99`, percentile(cold[side], 99), "ms", percentile(cold.none, 99)),
      {
        name: `${label}: added p50`,
        value: round(median(cold[side]) - median(cold.none)),
        unit: "ms",
        goal: "< 15 ms",
      },
    ];
  });
}

async function requests(count: number): Promise<BenchRow[]> {
  const herd = await Herd.start(
    NAMES.map((name) => sidePool(name, { min: 1 })),
    { sandbox: sandboxLauncher() },
  );
  const rows: BenchRow[] = [];
  try {
    const targets: string[] = [];
    for (const name of NAMES) targets.push((await herd.acquire(name, `req-${name}`)).workerAddress);
    for (const reuse of [true, false]) {
      const agents = NAMES.map(() => new Agent({ keepAlive: true }));
      const times: number[][] = NAMES.map(() => []);
      for (let i = 0; i < count; i++) {
        for (const k of order([0, 1, 2], i)) {
          const started = performance.now();
          await getJson(targets[k]!, "/whoami", reuse ? agents[k]! : false);
          times[k]!.push(performance.now() - started);
        }
      }
      for (const a of agents) a.destroy();
      const how = reuse ? "keep-alive" : "new connection";
      for (const k of [1, 2]) {
        const label = `request, ${how}, ${NAMES[k]} vs none`;
        rows.push(
          compared(`${label} p50`, median(times[k]!), "ms", median(times[0]!), "≤ baseline + 10 %"),
          compared(`${label} p99`, percentile(times[k]!, 99), "ms", percentile(times[0]!, 99)),
        );
      }
    }
  } finally {
    await herd.close();
  }
  return rows;
}

export async function benchIsolation(opts: { runs?: number } = {}): Promise<BenchRow[]> {
  const runs = opts.runs ?? 30;
  return [
    ...(await coldStarts(runs, "http")),
    ...(await coldStarts(runs, "tcp")),
    ...(await requests(runs * 30)),
  ];
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const i = process.argv.indexOf("--runs");
  const runs = i > 0 ? Number(process.argv[i + 1]) : undefined;
  const before = loadavg()[0]!.toFixed(2);
  const rows = await benchIsolation(runs ? { runs } : {});
  console.log(formatTable(rows));
  console.log(`load average (1 min): ${before} before, ${loadavg()[0]!.toFixed(2)} after`);
}
