// Acquire and burst against the Go herd library (issue 26), in one interleaved run:
//   acquire  warm new-session AcquireSession p50: a new session id on an idle worker of a
//            reusing pool, then its release, one call at a time over one keep-alive
//            connection, from the same bare node:http client (Connect's unary JSON call to
//            herd; the harness's JSON endpoint to the library), against a plain HTTP round trip
//            (the same call to an endpoint of the Go harness that does nothing). The systems
//            take turns call by call, so a burst of load on the shared machine falls on all of
//            them alike. Then, system by system, the server process's CPU time (all its
//            threads, /proc/PID/task/*/schedstat) per acquire + release, workers not counted;
//   burst    200 sessions × one 100 ms request each (GET /sleep?ms=100, each on a connection
//            of its own, all at once, a new session per request, ended when its request is
//            done) through the data plane on a pool of max 10: the makespan ÷ the ideal
//            (200 × 100 ms / 10 = 2 s), and the same 200 requests sent straight to 10 workers
//            of our own, 10 at a time (what the worker itself costs, no proxy); and the server
//            process's CPU per burst session.
// herd is the real daemon (`node bin/herd serve`, dist/); the library is bench/go-herd (the
// vendored HackStrix/herd and a harness main: the library's own daemon is a stub, so its
// Pool.Acquire/Release are served by a bare net/http endpoint, and its data plane is its
// proxy.ReverseProxy, each session released after its request). Both run a pool of min = max
// = 10 of the same worker, bench/go-worker (which answers /health and /sleep), health-checked
// on /health. Each round runs every system once, in an order that rotates per round; the
// figures are medians of the rounds' figures, the load average is printed beside each round.
// With `--ab DIR`, another tree's herd (DIR/bin/herd, its dist/) runs as "herd B" in the same
// rotation.
//
// Standalone: `npx tsx bench/acquire.ts [--rounds N] [--calls N] [--ab DIR]`.

import { type ChildProcess, spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { Agent, request } from "node:http";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { type Daemon, startDaemon } from "../test/helpers/daemon.ts";
import { goHerd, goWorker } from "./bench-tools.ts";
import { type BenchRow, compared, formatTable, load1, median, round } from "./report.ts";

const BURST = { sessions: 200, max: 10, holdMs: 100 };
const IDEAL_MS = (BURST.sessions / BURST.max) * BURST.holdMs;

/** One system under test, as the bench's clients see it. */
interface System {
  name: string;
  /** A new session (acquire) and its release; resolves with the acquire's time in ms. */
  cycle(id: string): Promise<number>;
  dataUrl: string;
  /** The server's process (its CPU is measured; its workers' is not). */
  pid: number;
  stop(): Promise<void>;
}

/** CPU time (ns) every thread of `pid` has run so far. */
function cpuNs(pid: number): number {
  let ns = 0;
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, "utf8").split(" ")[0]);
    } catch {} // a thread that ended in between
  }
  return ns;
}

/** POST a JSON body on `agent`'s connection; resolves with the answer's text (status 200). */
function post(agent: Agent, url: string, body: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: "POST", agent, headers: { "content-type": "application/json" } },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          text += chunk;
        });
        res.once("end", () =>
          res.statusCode === 200
            ? resolve(text)
            : reject(new Error(`${url}: status ${res.statusCode}: ${text}`)),
        );
      },
    );
    req.once("error", reject);
    req.end(body);
  });
}

async function timedCycle(acquire: () => Promise<unknown>, release: () => Promise<unknown>) {
  const started = performance.now();
  await acquire();
  const ms = performance.now() - started;
  await release();
  return ms;
}

const POOL = "bench";

async function startHerd(name: string, worker: string, tree?: string): Promise<System> {
  const daemon: Daemon = await startDaemon({
    config: {
      control: { max_connections_per_client: 0 },
      data: { max_connections_per_client: 0 },
      workers: {
        [POOL]: {
          cmd: [worker],
          min: BURST.max,
          max: BURST.max,
          reuse: true,
          health_path: "/health",
          release_on_disconnect: true,
          disconnect_grace: "0s",
          queue_limit: BURST.sessions,
          // As the library's workers run (its sandbox off): the default would put each worker
          // in bubblewrap behind a relay socket, a socat that forks per data-plane connection.
          isolation: "none",
        },
      },
    },
    ...(tree ? { command: [process.execPath, join(tree, "bin/herd")], cwd: tree } : {}),
  });
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const service = `${daemon.controlUrl}/herd.v1.HerdService`;
  return {
    name,
    dataUrl: daemon.dataUrl,
    pid: daemon.pid,
    cycle: (id) =>
      timedCycle(
        () =>
          post(agent, `${service}/AcquireSession`, JSON.stringify({ pool: POOL, sessionId: id })),
        () => post(agent, `${service}/ReleaseSession`, JSON.stringify({ sessionId: id })),
      ),
    async stop() {
      agent.destroy();
      await daemon.stop();
    },
  };
}

/** The first line `child` prints, parsed as JSON. */
async function firstLine<T>(child: ChildProcess, what: string): Promise<T> {
  const lines = createInterface({ input: child.stdout! });
  const line = await new Promise<string>((resolve, reject) => {
    lines.once("line", resolve);
    child.once("exit", () => reject(new Error(`bench: ${what} exited before it was ready`)));
  });
  lines.close();
  return JSON.parse(line) as T;
}

interface GoHerd extends System {
  /** A plain HTTP round trip: the acquire's call to an endpoint that does no work. */
  noop(id: string): Promise<number>;
  /** The p50 of `n` in-process Acquire calls (new sessions, each released), in ms. */
  inProcess(n: number): Promise<number>;
}

async function startGoHerd(worker: string): Promise<GoHerd> {
  const child = spawn(goHerd(), ["-max", String(BURST.max), "--", worker], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const exited = new Promise((r) => child.once("exit", r));
  const { control, data } = await firstLine<{ control: string; data: string }>(
    child,
    "the Go herd harness",
  );
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const body = (id: string) => JSON.stringify({ sessionId: id });
  return {
    name: "Go library",
    dataUrl: data,
    pid: child.pid!,
    cycle: (id) =>
      timedCycle(
        () => post(agent, `${control}/acquire`, body(id)),
        () => post(agent, `${control}/release`, body(id)),
      ),
    noop: (id) =>
      timedCycle(
        () => post(agent, `${control}/noop`, body(id)),
        async () => {},
      ),
    async inProcess(n) {
      const res = await fetch(`${control}/inprocess?n=${n}`);
      return ((await res.json()) as { p50Ms: number }).p50Ms;
    },
    async stop() {
      agent.destroy();
      child.stdin!.end(); // the harness shuts its pool down (every worker killed) and exits
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** GET `path` on a connection of its own; resolves with the status (0 on an error). */
function getOnce(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve) => {
    const req = request(url, { agent: false, headers }, (res) => {
      res.resume();
      res.once("end", () => resolve(res.statusCode ?? 0));
    });
    req.once("error", () => resolve(0));
    req.end();
  });
}

const SLEEP = `/sleep?ms=${BURST.holdMs}`;

/** The burst through `system`'s data plane: its makespan (ms) and how many answered 200. */
async function burst(system: System, tag: string): Promise<{ ms: number; ok: number }> {
  const started = performance.now();
  const statuses = await Promise.all(
    Array.from({ length: BURST.sessions }, (_, i) =>
      getOnce(`${system.dataUrl}${SLEEP}`, { "x-session-id": `${tag}-${i}` }),
    ),
  );
  return { ms: performance.now() - started, ok: statuses.filter((s) => s === 200).length };
}

/** The same 200 requests straight to `workers`, one at a time on each. */
async function directBurst(workers: readonly string[]): Promise<number> {
  const started = performance.now();
  let next = 0;
  await Promise.all(
    workers.map(async (url) => {
      while (next++ < BURST.sessions) await getOnce(`${url}${SLEEP}`, {});
    }),
  );
  return performance.now() - started;
}

async function spawnGoWorker(worker: string): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(worker, [], {
    env: { ...process.env, PORT: "0" },
    stdio: ["ignore", "pipe", "ignore"],
  });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once("line", resolve);
    child.once("exit", () => reject(new Error("bench: the Go worker exited before it was ready")));
  });
  return { url: `http://127.0.0.1:${line.split(" ")[1]}`, child };
}

interface Figures {
  acquire: number[];
  /** Server CPU µs per acquire + release. */
  cpu: number[];
  burst: number[];
  /** Server CPU µs per burst session. */
  burstCpu: number[];
  served: number[];
}

export async function benchAcquire(
  opts: { rounds?: number; calls?: number; ab?: string } = {},
): Promise<BenchRow[]> {
  const rounds = opts.rounds ?? 5;
  const calls = opts.calls ?? 300;
  const worker = goWorker();
  const systems: System[] = [];
  const own: { url: string; child: ChildProcess }[] = [];
  try {
    const go = await startGoHerd(worker);
    systems.push(go);
    systems.push(await startHerd("herd", worker));
    if (opts.ab) systems.push(await startHerd("herd B", worker, opts.ab));
    for (let i = 0; i < BURST.max; i++) own.push(await spawnGoWorker(worker));
    const figures = new Map<string, Figures>(
      systems.map((s) => [s.name, { acquire: [], cpu: [], burst: [], burstCpu: [], served: [] }]),
    );
    const noop: number[] = [];
    const inProcess: number[] = [];
    const direct: number[] = [];
    const loads: number[] = [];
    // Warm-up: V8 compiles herd's paths only after some hundreds of calls (the Go side is
    // compiled ahead), and each pool's workers see their first burst.
    for (const s of systems) {
      for (let i = 0; i < 500; i++) await s.cycle(`warm-up-${i}`);
      await burst(s, "warm-up");
    }
    for (let r = 0; r < rounds; r++) {
      const order = systems.map((_, i) => systems[(i + r) % systems.length]!);
      const load = load1();
      loads.push(load);
      const samples = new Map<string, number[]>(systems.map((s) => [s.name, []]));
      const floor: number[] = [];
      for (let i = 0; i < calls; i++) {
        for (const s of order) samples.get(s.name)!.push(await s.cycle(`r${r}-${i}`));
        floor.push(await go.noop(`noop-${i}`));
      }
      for (const s of systems) figures.get(s.name)!.acquire.push(median(samples.get(s.name)!));
      noop.push(median(floor));
      for (const s of order) {
        const before = cpuNs(s.pid);
        for (let i = 0; i < calls; i++) await s.cycle(`cpu-r${r}-${i}`);
        figures.get(s.name)!.cpu.push((cpuNs(s.pid) - before) / 1_000 / calls);
      }
      inProcess.push(await go.inProcess(calls));
      for (const s of order) {
        const before = cpuNs(s.pid);
        const { ms, ok } = await burst(s, `burst-${r}`);
        figures.get(s.name)!.burstCpu.push((cpuNs(s.pid) - before) / 1_000 / BURST.sessions);
        figures.get(s.name)!.burst.push(ms);
        figures.get(s.name)!.served.push(ok);
      }
      direct.push(await directBurst(own.map((w) => w.url)));
      process.stderr.write(
        `acquire round ${r + 1}/${rounds}, load ${load}: ${systems
          .map((s) => {
            const f = figures.get(s.name)!;
            return `${s.name} ${round(f.acquire.at(-1)!, 3)} ms (${round(f.cpu.at(-1)!, 0)} µs CPU), burst ${round(f.burst.at(-1)! / IDEAL_MS, 3)} × ideal`;
          })
          .join("; ")}; plain round trip ${round(noop.at(-1)!, 3)} ms\n`,
      );
    }
    const of = (name: string) => figures.get(name)!;
    const goAcquire = median(of("Go library").acquire);
    const rows: BenchRow[] = [];
    for (const s of systems.filter((s) => s !== go)) {
      rows.push({
        ...compared(
          `warm new-session AcquireSession p50: ${s.name} vs the Go library`,
          median(of(s.name).acquire),
          "ms",
          goAcquire,
          "≤ 1.0 × (the Go library's)",
        ),
        value: round(median(of(s.name).acquire), 3),
      });
    }
    for (const s of systems.filter((s) => s !== go)) {
      rows.push(
        compared(
          `server CPU per new-session acquire + release: ${s.name} vs the Go library`,
          median(of(s.name).cpu),
          "µs",
          median(of("Go library").cpu),
        ),
      );
    }
    rows.push(
      {
        ...compared(
          "warm new-session acquire p50: the Go library (its Pool.Acquire behind net/http) vs a plain HTTP round trip",
          goAcquire,
          "ms",
          median(noop),
        ),
        value: round(goAcquire, 3),
      },
      {
        name: "a plain HTTP round trip p50 (the same call, no work)",
        value: round(median(noop), 3),
        unit: "ms",
      },
      {
        name: "the Go library's Pool.Acquire in process p50 (no network)",
        value: round(median(inProcess), 3),
        unit: "ms",
      },
    );
    for (const s of systems) {
      rows.push(
        compared(
          `burst 200 × 100 ms on max 10 through the data plane: ${s.name} makespan`,
          median(of(s.name).burst),
          "ms",
          IDEAL_MS,
          s === go ? undefined : "≤ 1.1 × ideal",
        ),
        {
          name: `burst through the data plane: ${s.name} sessions served (worst round)`,
          value: Math.min(...of(s.name).served),
          unit: `of ${BURST.sessions}`,
          goal: `≥ ${BURST.sessions}`,
        },
      );
    }
    for (const s of systems.filter((s) => s !== go)) {
      rows.push(
        compared(
          `server CPU per burst session (connection, acquire, proxied request, release): ${s.name} vs the Go library`,
          median(of(s.name).burstCpu),
          "µs",
          median(of("Go library").burstCpu),
        ),
      );
    }
    rows.push(
      compared(
        "burst: the same 200 requests straight to 10 workers (no proxy)",
        median(direct),
        "ms",
        IDEAL_MS,
      ),
      compared(
        "burst makespan: herd vs the Go library",
        median(of("herd").burst),
        "ms",
        median(of("Go library").burst),
      ),
      {
        name: `load average (1 min) over the rounds, median (min ${Math.min(...loads)}, max ${Math.max(...loads)})`,
        value: median(loads),
        unit: "",
      },
    );
    return rows;
  } finally {
    for (const w of own) w.child.kill("SIGKILL");
    for (const s of systems) await s.stop();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const arg = (name: string) => {
    const i = process.argv.indexOf(name);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  const rounds = arg("--rounds");
  const calls = arg("--calls");
  const ab = arg("--ab");
  console.log(
    formatTable(
      await benchAcquire({
        ...(rounds ? { rounds: Number(rounds) } : {}),
        ...(calls ? { calls: Number(calls) } : {}),
        ...(ab ? { ab } : {}),
      }),
    ),
  );
}
