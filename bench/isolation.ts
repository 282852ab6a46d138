// Tenant-isolation benchmarks (issue 9): what `isolation: {user: auto, network: private,
// filesystem: private}` adds, against the unisolated pool in the same run, rounds interleaved so
// machine noise moves both sides alike:
//   cold start   acquire on a pool whose prepared spare is ready (reuse: false, so every acquire
//                starts a worker) minus the worker's self-reported boot time; the sandbox's
//                namespaces, mounts and relay are made at prepare time, so what is left is the
//                exec through setpriv and readiness through the relay;
//   request      a GET through a keep-alive connection (the data plane's upstream agents), and
//                one on a fresh connection each (the relay forks per connection).
// The load average is printed beside: on a shared 2-core machine it explains outliers.
//
// Standalone (root, bubblewrap and socat installed): `node --import tsx bench/isolation.ts [--runs N]`.

import { Agent, get } from "node:http";
import { loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import { workerEndpoint } from "../src/core/index.ts";
import { Herd, type PoolOptionsInput, resolvePoolOptions } from "../src/pool/index.ts";
import { sandboxLauncher } from "../src/sandbox/index.ts";
import { WORKER_FIXTURE as WORKER } from "../test/helpers/worker.ts";
import { type BenchRow, compared, formatTable, median, percentile, round } from "./report.ts";

const ISOLATED = { user: "auto", network: "private", filesystem: "private" } as const;

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
    [
      resolvePoolOptions(pool("plain", readiness)),
      resolvePoolOptions(pool("isolated", { ...readiness, isolation: ISOLATED })),
    ],
    { sandbox: sandboxLauncher() },
  );
  const cold: Record<string, number[]> = { plain: [], isolated: [] };
  try {
    await settle();
    for (let i = 0; i < runs; i++) {
      for (const name of i % 2 ? ["plain", "isolated"] : ["isolated", "plain"]) {
        const started = performance.now();
        const s = await herd.acquire(name, `cold-${name}-${i}`);
        const elapsed = performance.now() - started;
        cold[name]!.push(elapsed - (await bootMs(s.workerAddress)));
        await herd.release(s.id);
        await settle();
      }
    }
  } finally {
    await herd.close();
  }
  const label = `cold start overhead, ${ready} ready, isolated`;
  const { plain, isolated } = cold as { plain: number[]; isolated: number[] };
  return [
    compared(`${label} p50`, median(isolated), "ms", median(plain), "≤ baseline + 15 ms"),
    compared(`${label} p99`, percentile(isolated, 99), "ms", percentile(plain, 99)),
    {
      name: `${label}: added p50`,
      value: round(median(isolated) - median(plain)),
      unit: "ms",
      goal: "< 15 ms",
    },
  ];
}

async function requests(count: number): Promise<BenchRow[]> {
  const herd = await Herd.start(
    [
      resolvePoolOptions(pool("plain", { min: 1 })),
      resolvePoolOptions(pool("isolated", { min: 1, isolation: ISOLATED })),
    ],
    { sandbox: sandboxLauncher() },
  );
  const rows: BenchRow[] = [];
  try {
    const plain = await herd.acquire("plain", "req-plain");
    const isolated = await herd.acquire("isolated", "req-isolated");
    for (const reuse of [true, false]) {
      const agents = [new Agent({ keepAlive: true }), new Agent({ keepAlive: true })];
      const times: number[][] = [[], []];
      const targets = [plain.workerAddress, isolated.workerAddress];
      for (let i = 0; i < count; i++) {
        for (const k of i % 2 ? [0, 1] : [1, 0]) {
          const started = performance.now();
          await getJson(targets[k]!, "/whoami", reuse ? agents[k]! : false);
          times[k]!.push(performance.now() - started);
        }
      }
      for (const a of agents) a.destroy();
      const label = reuse ? "request via relay, keep-alive" : "request via relay, new connection";
      rows.push(
        compared(`${label} p50`, median(times[1]!), "ms", median(times[0]!)),
        compared(`${label} p99`, percentile(times[1]!, 99), "ms", percentile(times[0]!, 99)),
      );
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
