// Pool-engine benchmarks (issue 2), each against a baseline measured in the same run:
//   cold start  acquire on an empty pool minus the worker's self-reported boot time (taken when
//               it listens), vs the same for spawning the worker directly and waiting for its
//               "ready" line; once with the HTTP health probe (both sides wait for the fresh
//               worker's first answer, 15-20 ms of its own lazy initialisation on a loaded
//               host) and once with TCP readiness, which leaves herd's own cost; split in two phases by the worker's own clock (its
//               process start and the moment it listened): acquire → exec, and listening →
//               acquire returns (readiness, listener-owner check, bind);
//   reap        release (reuse: false) of a 10-process tree until its last process is gone, vs
//               the same tree (the same worker, the same 9 setsid'd grandchildren) started
//               directly and SIGKILLed pid by pid: the floor for a launcher that knows them all;
//   burst       200 concurrent 100-ms sessions on max: 10, vs the ideal 2 s: on the pool engine,
//               and through the data plane (each session one request, GET /sleep?ms=100, on
//               its own connection, ended when the connection closes; herd in a child process,
//               and the same 200 requests sent straight to 10 workers as the floor); the median
//               gap between a session's release and the next acquire on its worker says where
//               time goes;
//   bounds      daemon heap per queued acquire and per retained event (what queue_limit and
//               events.history cost).
// The daemon's memory is measured on the compiled daemon itself (bench/runtime.ts).
//
// Standalone: `node --import tsx bench/pool.ts [--runs N] [--only cold|burst]`.

import { type ChildProcess, spawn } from "node:child_process";
import { setMaxListeners } from "node:events";
import { request } from "node:http";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { startDataPlane } from "../src/dataplane/index.ts";
import { Herd, type PoolOptionsInput, probeHttp, resolvePoolOptions } from "../src/pool/index.ts";
import { pidAlive } from "../test/helpers/processes.ts";
import { WORKER_FIXTURE as WORKER } from "../test/helpers/worker.ts";
import { type BenchRow, compared, formatTable, median, percentile, round } from "./report.ts";

function pool(overrides: Partial<PoolOptionsInput>): PoolOptionsInput {
  return {
    name: "bench",
    command: [process.execPath, WORKER],
    healthPath: "/health",
    healthIntervalMs: 5_000,
    ...overrides,
  };
}

/** Now, on the clock the worker reports with (epoch ms, sub-ms). */
const epochNow = () => performance.timeOrigin + performance.now();

/**
 * One cold start seen from both sides: `from` (the start, epoch ms) to `to` (ready), split by
 * the worker's own clock into before its process started, its boot, and after it listened.
 */
interface ColdStart {
  overhead: number;
  toExec: number;
  afterListen: number;
}

async function coldStartOf(address: string, from: number, to: number): Promise<ColdStart> {
  const res = await fetch(`http://${address}/whoami`);
  const { bootMs, startedAt } = (await res.json()) as { bootMs: number; startedAt: number };
  return {
    overhead: to - from - bootMs,
    toExec: startedAt - from,
    afterListen: to - (startedAt + bootMs),
  };
}

/**
 * Spawn the worker ourselves and wait for its ready line (and, for `http`, its first answer to
 * the health check herd's readiness waits for: a fresh Node worker's first answer takes
 * several ms of its own lazy initialisation): the floor any launcher pays.
 */
async function directColdStart(ready: "http" | "tcp"): Promise<ColdStart> {
  const started = epochNow();
  const { child, port } = await spawnWorker();
  if (ready === "http") await probeHttp({ host: "127.0.0.1", port }, "/health", 5_000);
  const cold = await coldStartOf(`127.0.0.1:${port}`, started, epochNow());
  child.kill("SIGKILL");
  await new Promise((r) => child.once("exit", r));
  return cold;
}

async function coldStart(runs: number, ready: "http" | "tcp"): Promise<BenchRow[]> {
  const readiness: Partial<PoolOptionsInput> = ready === "tcp" ? { ready: { kind: "tcp" } } : {};
  const herd = await Herd.start([
    resolvePoolOptions(pool({ min: 0, max: 1, reuse: false, ...readiness })),
  ]);
  const viaHerd: ColdStart[] = [];
  const direct: ColdStart[] = [];
  try {
    for (let i = 0; i < runs; i++) {
      const started = epochNow();
      const s = await herd.acquire("bench", `cold-${i}`);
      viaHerd.push(await coldStartOf(s.workerAddress, started, epochNow()));
      await herd.release(s.id);
      direct.push(await directColdStart(ready));
    }
  } finally {
    await herd.close();
  }
  const label = ready === "tcp" ? "cold start overhead, tcp ready" : "cold start overhead";
  const of = (side: ColdStart[], phase: keyof ColdStart) => side.map((c) => c[phase]);
  const phase = (name: string, key: keyof ColdStart) =>
    compared(`${label}: ${name} p50`, median(of(viaHerd, key)), "ms", median(of(direct, key)));
  return [
    compared(
      `${label} p50`,
      median(of(viaHerd, "overhead")),
      "ms",
      median(of(direct, "overhead")),
      "≤ 10 ms",
    ),
    compared(
      `${label} p99`,
      percentile(of(viaHerd, "overhead"), 99),
      "ms",
      percentile(of(direct, "overhead"), 99),
      "≤ 20 ms",
    ),
    phase("acquire → worker exec", "toExec"),
    phase("listening → acquire returns", "afterListen"),
  ];
}

/** The worker plus 9 setsid'd grandchildren it double-forks: the tree both sides reap. */
async function spawnTree(address: string): Promise<number[]> {
  const res = await fetch(`http://${address}/control/spawn?count=9&setsid=1`, { method: "POST" });
  return ((await res.json()) as { pids: number[] }).pids;
}

async function gone(tree: number[]): Promise<void> {
  while (tree.some(pidAlive)) await new Promise((r) => setImmediate(r));
}

/** Baseline: the same tree started by hand, then SIGKILLed pid by pid until all are gone. */
async function directReap(): Promise<number> {
  const child = spawn(process.execPath, [WORKER], {
    env: { ...process.env, PORT: "0" },
    stdio: ["ignore", "pipe", "ignore"],
  });
  const line = await new Promise<string>((resolve) =>
    createInterface({ input: child.stdout! }).once("line", resolve),
  );
  const tree = [child.pid!, ...(await spawnTree(`127.0.0.1:${line.split(" ")[1]}`))];
  const exited = new Promise((r) => child.once("exit", r));
  const started = performance.now();
  for (const pid of tree) process.kill(pid, "SIGKILL");
  await exited; // our own child stays a zombie (alive to /proc) until Node reaps it
  await gone(tree);
  return performance.now() - started;
}

async function reap(runs: number): Promise<BenchRow[]> {
  const herd = await Herd.start([resolvePoolOptions(pool({ min: 1, max: 1, reuse: false }))]);
  const times: number[] = [];
  const direct: number[] = [];
  try {
    for (let i = 0; i < runs; i++) {
      const s = await herd.acquire("bench", `reap-${i}`, { waitMs: 30_000 });
      const tree = [s.workerPid, ...(await spawnTree(s.workerAddress))];
      const started = performance.now();
      await herd.release(s.id);
      await gone(tree);
      times.push(performance.now() - started);
      direct.push(await directReap());
    }
  } finally {
    await herd.close();
  }
  return [
    compared("reap 10-process tree p50", median(times), "ms", median(direct)),
    compared(
      "reap 10-process tree p99",
      percentile(times, 99),
      "ms",
      percentile(direct, 99),
      "≤ 10 ms",
    ),
  ];
}

async function burst(): Promise<BenchRow[]> {
  const sessions = 200;
  const max = 10;
  const holdMs = 100;
  const herd = await Herd.start([
    resolvePoolOptions(pool({ min: max, max, reuse: true, queueLimit: sessions })),
  ]);
  try {
    const started = performance.now();
    const results = await Promise.allSettled(
      Array.from({ length: sessions }, async (_, i) => {
        const s = await herd.acquire("bench", `burst-${i}`, { waitMs: 60_000 });
        await new Promise((r) => setTimeout(r, holdMs));
        await herd.release(s.id);
      }),
    );
    const total = performance.now() - started;
    const ok = results.filter((r) => r.status === "fulfilled").length;
    const ideal = (sessions / max) * holdMs;
    return [
      {
        name: "burst sessions served",
        value: ok,
        unit: `of ${sessions}`,
        goal: `≥ ${sessions}`,
      },
      compared("burst 200 × 100 ms on max 10: total time", total, "ms", ideal, "≤ 1.05 × ideal"),
    ];
  } finally {
    await herd.close();
  }
}

/** GET `path` on a connection of its own (closed after the answer); resolves with the status. */
function getOnce(url: string, path: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${path}`, { agent: false, headers }, (res) => {
      res.resume();
      res.once("end", () => resolve(res.statusCode ?? 0));
    });
    req.once("error", reject);
    req.end();
  });
}

const BURST = { sessions: 200, max: 10, holdMs: 100 };

/**
 * The daemon side of burstThroughDataPlane, in a process of its own (`--serve-burst`) so the
 * 200 clients never share a thread with the proxy they measure: the pool (release on
 * disconnect, no grace) and the data plane. It prints the data plane's URL; at the first
 * stdin line, the release → next acquire gaps (ms) it saw; when stdin closes, it stops.
 */
async function serveBurst(): Promise<void> {
  const herd = await Herd.start([
    resolvePoolOptions(
      pool({
        min: BURST.max,
        max: BURST.max,
        reuse: true,
        queueLimit: BURST.sessions,
        releaseOnDisconnect: true,
        disconnectGraceMs: 0,
      }),
    ),
  ]);
  const dp = await startDataPlane(herd, { listen: "127.0.0.1:0", maxConnectionsPerClient: 0 });
  // Per worker: when its last session ended; the gap until its next session is bound.
  const releasedAt = new Map<string, number>();
  const gaps: number[] = [];
  const events = herd.subscribe();
  const watching = (async () => {
    for await (const e of events) {
      if (!e.workerId) continue;
      if (e.type === "session_released") releasedAt.set(e.workerId, performance.now());
      if (e.type === "session_acquired") {
        const at = releasedAt.get(e.workerId);
        if (at !== undefined) gaps.push(performance.now() - at);
      }
    }
  })();
  process.stdout.write(`${JSON.stringify({ url: dp.url })}\n`);
  for await (const _ of createInterface({ input: process.stdin })) {
    process.stdout.write(`${JSON.stringify(gaps)}\n`);
  }
  events.close();
  await watching;
  await dp.close();
  await herd.close();
}

/** `count` GETs of `path`, each on a connection of its own, `concurrency` at a time. */
async function getsAtOnce(
  urlOf: (i: number) => string,
  count: number,
  concurrency: number,
  headers: (i: number) => Record<string, string>,
): Promise<number[]> {
  const statuses: number[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = next++; i < count; i = next++) {
        statuses[i] = await getOnce(urlOf(i), `/sleep?ms=${BURST.holdMs}`, headers(i)).catch(
          () => 0,
        );
      }
    }),
  );
  return statuses;
}

/**
 * The burst as a data-plane client sees it: 200 clients at once, each one request on its own
 * connection for its own session (the session ends when the connection closes), the worker
 * holding each for 100 ms; herd runs in a child process. Against the ideal (200 / 10 × 100
 * ms, the yardstick) and against the floor measured in the same run: the same 200
 * requests sent straight to 10 workers of our own, 10 at a time — the worker's own time per
 * request (a connection, its 100 ms timer, the answer) that no proxy can remove.
 */
async function burstThroughDataPlane(): Promise<BenchRow[]> {
  const { sessions, max, holdMs } = BURST;
  const child = spawn(process.execPath, ["--import", "tsx", SELF, "--serve-burst"], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const nextLine = async () => {
    const { value, done } = await lines.next();
    if (done) throw new Error("bench: the burst daemon exited early");
    return JSON.parse(value) as unknown;
  };
  const workers = await Promise.all(Array.from({ length: max }, () => startWorker()));
  try {
    const { url } = (await nextLine()) as { url: string };
    const directStarted = performance.now();
    await getsAtOnce(
      (i) => workers[i % max]!.url,
      sessions,
      max,
      () => ({}),
    );
    const direct = performance.now() - directStarted;
    const started = performance.now();
    const statuses = await getsAtOnce(
      () => url,
      sessions,
      sessions,
      (i) => ({
        "X-Session-ID": `dp-burst-${i}`,
      }),
    );
    const total = performance.now() - started;
    child.stdin!.write("gaps\n");
    const gaps = (await nextLine()) as number[];
    const ideal = (sessions / max) * holdMs;
    return [
      {
        name: "burst through the data plane: sessions served",
        value: statuses.filter((s) => s === 200).length,
        unit: `of ${sessions}`,
        goal: `≥ ${sessions}`,
      },
      compared(
        "burst 200 × 100 ms on max 10 through the data plane: total time",
        total,
        "ms",
        ideal,
        "≤ 1.05 × ideal",
      ),
      compared(
        "burst through the data plane vs the same requests straight to 10 workers",
        total,
        "ms",
        direct,
      ),
      {
        name: "burst through the data plane: release → next acquire on the worker p50",
        value: round(median(gaps), 2),
        unit: "ms",
      },
    ];
  } finally {
    child.stdin!.end();
    await new Promise((r) => child.once("exit", r));
    for (const w of workers) await w.stop();
  }
}

/** The worker fixture started by us on a free port; resolves once it says it listens. */
async function spawnWorker(): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, [WORKER], {
    env: { ...process.env, PORT: "0" },
    stdio: ["ignore", "pipe", "ignore"],
  });
  const line = await new Promise<string>((resolve) =>
    createInterface({ input: child.stdout! }).once("line", resolve),
  );
  return { child, port: Number(line.split(" ")[1]) };
}

/** A worker of our own, answering (for baselines without herd). */
async function startWorker(): Promise<{ url: string; stop(): Promise<void> }> {
  const { child, port } = await spawnWorker();
  await probeHttp({ host: "127.0.0.1", port }, "/health", 5_000);
  return {
    url: `http://127.0.0.1:${port}`,
    async stop() {
      child.kill("SIGKILL");
      if (child.exitCode === null && child.signalCode === null) {
        await new Promise((r) => child.once("exit", r));
      }
    },
  };
}

function heapUsed(): number {
  // Repeated full collections (with --expose-gc) settle finalizers and weak references
  // between readings.
  for (let i = 0; i < 3; i++) (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage().heapUsed;
}

/**
 * What the configured bounds cost (issue 10, "bound every queue and history"): daemon heap
 * per acquire queued at max (pool engine only: a data-plane or RPC caller adds its own
 * connection), and per event retained in the WatchSessions history.
 */
export async function boundsMemory(count = 5_000): Promise<BenchRow[]> {
  const herd = await Herd.start([
    resolvePoolOptions(pool({ min: 1, max: 1, queueLimit: count, healthIntervalMs: 60_000 })),
  ]);
  try {
    await herd.acquire("bench", "holder");
    const abort = new AbortController();
    // One signal for every queued acquire, on purpose: not the leak Node warns of.
    setMaxListeners(count + 1, abort.signal);
    const before = heapUsed();
    const queued = Array.from({ length: count }, (_, i) =>
      herd
        .acquire("bench", `queued-${i}`, { waitMs: 600_000, signal: abort.signal })
        .catch(() => {}),
    );
    const withQueue = heapUsed();
    abort.abort();
    await Promise.all(queued);
    // Each acquire of a fresh id and each release appends events: count what they retain.
    const eventsBefore = herd.revision();
    const beforeEvents = heapUsed();
    for (let i = 0; i < count / 10; i++) {
      await herd.release("holder");
      await herd.acquire("bench", "holder");
    }
    const events = herd.revision() - eventsBefore;
    const withEvents = heapUsed();
    return [
      {
        name: "daemon heap per queued acquire (pool engine)",
        value: round((withQueue - before) / count / 1024),
        unit: "KiB",
      },
      {
        name: "daemon heap per retained event",
        value: round((withEvents - beforeEvents) / events / 1024),
        unit: "KiB",
      },
    ];
  } finally {
    await herd.close();
  }
}

export async function benchPool(opts: { runs?: number } = {}): Promise<BenchRow[]> {
  const runs = opts.runs ?? 30;
  return [
    ...(await coldStart(runs, "http")),
    ...(await coldStart(runs, "tcp")),
    ...(await reap(runs)),
    ...(await burst()),
    ...(await burstThroughDataPlane()),
    ...(await boundsMemory()),
  ];
}

const SELF = fileURLToPath(import.meta.url);

if (process.argv[1] === SELF && process.argv.includes("--serve-burst")) {
  await serveBurst();
} else if (process.argv[1] === SELF) {
  const i = process.argv.indexOf("--runs");
  const runs = i > 0 ? Number(process.argv[i + 1]) : undefined;
  const only = process.argv[process.argv.indexOf("--only") + 1];
  const rows =
    only === "burst"
      ? [...(await burst()), ...(await burstThroughDataPlane())]
      : only === "cold"
        ? [...(await coldStart(runs ?? 30, "http")), ...(await coldStart(runs ?? 30, "tcp"))]
        : await benchPool(runs ? { runs } : {});
  console.log(formatTable(rows));
}
