// Data-plane benchmark (issue 26's honest bench): herd's data plane against nginx (one worker
// process, upstream keep-alive; the reference proxy), a raw Node TCP relay (the floor for a
// proxy on Node's sockets, bench/tcp-relay.mjs) and the worker reached directly, all in one
// interleaved run, with wrk on 50 keep-alive connections. The "native prototype" row is
// bench/c-proxy: herd's fast-path work for plain requests done in C (issue 26), measured to
// judge a hot path outside V8 against herd's ≥ 30 % CPU-per-request adoption bar.
//
// The worker is a small C server (bench/c-worker: one epoll loop, a fixed answer per request
// head), which costs a fraction of what any proxy in front of it does (its own CPU per request
// is on the direct row), so the proxy, not the worker, sets the ceiling. The WebSocket rows
// use a Go net/http worker (bench/go-worker, with a WebSocket echo). The rows labelled "node
// worker" keep the old baseline (test/fixtures/worker.mjs, which serves about what herd does):
// there the worker is the bottleneck and the ratios flatter herd.
//
// Per system: req/s, p50/p99 latency, and for each proxy (and, on the direct row, for the Go
// worker itself) user and system CPU per request and context switches per request (voluntary + involuntary, summed over the process's threads),
// from /proc. CPU per request is the figure least moved by a loaded machine.
//
// Fair by construction: every system gets the same warm-up run right before its measured run;
// rounds interleave the systems (rotating their order) and each figure is the median over
// rounds; the load average is printed beside them.
//
// Fifty sessions: wrk's request headers are per thread (its request() does not know the
// connection), so one X-Session-ID per connection takes a thread per connection. The
// comparison is made like-for-like: herd with 50 sessions (50 Go workers) against nginx
// routing the same 50 sessions to the same 50 workers (a map on X-Session-ID), and each
// against itself on one session with 50 threads.
//
// WebSocket: 10 sockets on one session, each echoing one 64-byte message at a time through
// herd, through the raw relays and directly (the Go worker's /ws). "herd" tunnels with `pipe`
// (nativeRelay: false); "herd native" is another herd process whose tunnels go to the native
// tunnel relay (src/dataplane/native-relay.ts), its CPU counted with the relay's.
//
// Steady state, for the upstream-connection count: each measured run starts SETTLE_MS after
// its warm-up (see there); --trace-upstreams prints every new upstream connection, with why.
//
// A/B: `--ab DIR` also runs the herd of another tree (DIR: a copy of this repository with
// node_modules, e.g. the previous commit's src/ under this bench/) as "herd B", interleaved
// with this one, the two HTTP rows of each (one session, 50) on a fresh pair of proxy
// processes each round (a process's own lot moves its figure by up to ±10 %); `--only a,b` keeps only the named systems. HERD_BENCH_SERVE_ARGS adds node
// flags to the proxy process (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof").
//
// The proxies run in child processes (`--serve`), so the load generator never shares a
// thread with the proxy it measures. Standalone:
//   npx tsx bench/data-plane.ts [--seconds N] [--rounds N] [--trace-upstreams] [--ab DIR] [--only a,b]
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import WebSocket from "ws";
import { type DataPlaneCounters, startDataPlane } from "../src/dataplane/index.ts";
import { Herd, resolvePoolOptions } from "../src/pool/index.ts";
import { freePort } from "../test/helpers/ports.ts";
import { WORKER_FIXTURE as NODE_WORKER } from "../test/helpers/worker.ts";
import { cProxy, cRelay, cWorker, goWorker, tunnelRelay } from "./bench-tools.ts";
import { type RunningNginx, startNginx } from "./nginx.ts";
import { type BenchRow, compared, load1, median, round } from "./report.ts";
import { type WrkResult, wrk } from "./wrk.ts";

export interface DataPlaneBenchOptions {
  /** Seconds per measured run (default 5). */
  seconds?: number;
  /** Interleaved rounds; each figure is the median over them (default 3). */
  rounds?: number;
  /** Print each new upstream connection (with its reason) and each run's start and end. */
  traceUpstreams?: boolean;
  /** Another tree whose herd runs beside this one as "herd B" (see the header). */
  ab?: string;
  /** Only these systems (names as printed). */
  only?: string[];
}

const SELF = fileURLToPath(import.meta.url);
export const RELAY = fileURLToPath(new URL("./tcp-relay.mjs", import.meta.url));
const SESSION = "bench";
const NODE_SESSION = "bench-node";
/** The WebSocket rows' session, on the Go worker (the C worker speaks plain HTTP only). */
const WS_SESSION = "bench-ws";
const MANY = 50;
const CONNECTIONS = 50;
const WS_SOCKETS = 10;
/** wrk threads unless a row says otherwise: two, so that wrk is not what sets the ceiling. */
const WRK_THREADS = 2;
const WARMUP_SECONDS = 1;
/**
 * Pause between a warm-up and its measured run. wrk stops with requests in flight; their
 * client connections close and herd reads those answers to their end before parking the
 * upstream connections (fast-exchange.ts, clientClosed). A measured run starting sooner
 * finds some still busy and opens new ones (traced with --trace-upstreams: "none parked" in
 * the first milliseconds of the run), which is reconnection, not steady state.
 */
const SETTLE_MS = 300;
const HEADERS = { "X-Session-ID": SESSION };
const WS_HEADERS = { "X-Session-ID": WS_SESSION };
const CLOCK_TICKS =
  Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;

/** What the `--serve` child reports on its first stdout line. */
interface Served {
  herd: string;
  /** The C worker of session SESSION, and its pid. */
  direct: string;
  directPid: number;
  /** The native tunnel relay's pid, when this herd runs one (HERD_BENCH_NATIVE_RELAY). */
  nativeRelayPid?: number;
  /** The Go worker of session WS_SESSION. */
  wsDirect: string;
  /** The Node fixture worker of session NODE_SESSION. */
  nodeDirect: string;
  /** Session `${SESSION}-${i}` → its C worker's URL. */
  many: Record<string, string>;
}

// ---- the proxy process ----

async function serve(): Promise<void> {
  const herd = await Herd.start([
    resolvePoolOptions({
      name: "c",
      command: [cWorker()],
      min: 0,
      max: MANY + 1,
      queueLimit: MANY + 1,
    }),
    resolvePoolOptions({ name: "go", command: [goWorker()], min: 0, max: 1 }),
    resolvePoolOptions({ name: "node", command: [process.execPath, NODE_WORKER], min: 0, max: 1 }),
  ]);
  // --trace-upstreams: each new upstream connection, with its reason, on stderr.
  const trace = process.env.HERD_BENCH_TRACE_UPSTREAMS === "1";
  const ignore = () => {};
  const logger = {
    debug: (obj: object, msg: string) => {
      if (trace && msg.includes("upstream connection")) {
        process.stderr.write(`${Date.now()} ${msg} ${JSON.stringify(obj)}\n`);
      }
    },
    info: ignore,
    warn: ignore,
    error: ignore,
  };
  const native = process.env.HERD_BENCH_NATIVE_RELAY;
  const dp = await startDataPlane(herd, {
    listen: "127.0.0.1:0",
    logger,
    // The "herd" rows tunnel with `pipe`; "herd native" hands tunnels to the native relay.
    nativeRelay: native || false,
  });
  // Every session the runs use exists before the first run: cold starts are another bench.
  const [session, nodeSession, wsSession, ...many] = await Promise.all([
    herd.acquire("c", SESSION),
    herd.acquire("node", NODE_SESSION),
    herd.acquire("go", WS_SESSION),
    ...Array.from({ length: MANY }, (_, i) => herd.acquire("c", `${SESSION}-${i}`)),
  ]);
  const served: Served = {
    herd: dp.url,
    ...((dp as { nativeRelayPid?: number }).nativeRelayPid !== undefined
      ? { nativeRelayPid: (dp as { nativeRelayPid?: number }).nativeRelayPid }
      : {}),
    direct: `http://${session!.workerAddress}`,
    directPid: session!.workerPid,
    wsDirect: `http://${wsSession!.workerAddress}`,
    nodeDirect: `http://${nodeSession!.workerAddress}`,
    many: Object.fromEntries(many.map((s) => [s.id, `http://${s.workerAddress}`])),
  };
  process.stdout.write(`${JSON.stringify(served)}\n`);
  // Each stdin line asks for the counters; stdin closing means stop.
  for await (const _ of createInterface({ input: process.stdin })) {
    process.stdout.write(`${JSON.stringify(dp.counters)}\n`);
  }
  await dp.close();
  await herd.close();
}

// ---- the load generator ----

export interface ProcUsage {
  user: number;
  system: number;
  /** Context switches, voluntary + involuntary, over all the process's threads. */
  switches: number;
}

/** CPU seconds (user, system) and context switches the process has had so far, from /proc. */
export function usage(pid: number): ProcUsage {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  let switches = 0;
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    let status: string;
    try {
      status = readFileSync(`/proc/${pid}/task/${task}/status`, "utf8");
    } catch {
      continue; // a thread that ended meanwhile
    }
    for (const m of status.matchAll(/^(?:non)?voluntary_ctxt_switches:\s+(\d+)$/gm)) {
      switches += Number(m[1]);
    }
  }
  return {
    user: Number(fields[11]) / CLOCK_TICKS,
    system: Number(fields[12]) / CLOCK_TICKS,
    switches,
  };
}

/** WS_SOCKETS sockets each echoing one 64-byte message at a time; messages per second. */
export async function wsEcho(
  url: string,
  seconds: number,
  headers: Record<string, string>,
): Promise<number> {
  const sockets = await Promise.all(
    Array.from(
      { length: WS_SOCKETS },
      () =>
        new Promise<WebSocket>((resolve, reject) => {
          const ws = new WebSocket(`${url.replace("http:", "ws:")}/ws`, { headers });
          ws.once("message", () => resolve(ws)); // the worker's hello
          ws.once("error", reject);
        }),
    ),
  );
  const payload = Buffer.alloc(64, 1);
  let count = 0;
  const deadline = Date.now() + seconds * 1000;
  await Promise.all(
    sockets.map(
      (ws) =>
        new Promise<void>((resolve) => {
          ws.on("message", () => {
            count++;
            if (Date.now() < deadline) ws.send(payload);
            else resolve();
          });
          ws.send(payload);
        }),
    ),
  );
  for (const ws of sockets) ws.close();
  return count / seconds;
}

interface Target {
  name: string;
  url: string;
  headers?: Record<string, string>;
  sessionPerConnection?: string;
  /** wrk threads (default WRK_THREADS). */
  threads?: number;
  /** The process whose CPU the proxying burns (none for direct). */
  pid?: number;
  /** Asks that herd for its counters (upstream connections opened per request). */
  counters?: () => Promise<DataPlaneCounters>;
  /** With --ab: measured on this round's fresh proxy process of this tree (see the loop). */
  fresh?: "a" | "b";
}

interface Measured extends WrkResult {
  /** Proxy CPU per request, µs: user, system. */
  userUs: number;
  systemUs: number;
  /** Proxy context switches per request. */
  switches: number;
}

/** A `--serve` child of the tree at `root`: its URLs, counters, and stop. */
async function startServe(root: string, extraArgs: string[], env: Record<string, string> = {}) {
  const child = spawn(
    process.execPath,
    [...extraArgs, "--import", "tsx", join(root, "bench", "data-plane.ts"), "--serve"],
    {
      cwd: root,
      stdio: ["pipe", "pipe", "inherit"],
      env: { ...process.env, ...env },
    },
  );
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  // Lines not ours (V8's --trace-gc, --trace-deopt... print on stdout) are passed through.
  const nextLine = async (): Promise<unknown> => {
    for (;;) {
      const { value, done } = await lines.next();
      if (done) throw new Error(`bench: the proxy process of ${root} exited early`);
      if (value.startsWith("{")) return JSON.parse(value);
      process.stderr.write(`${value}\n`);
    }
  };
  return {
    child,
    served: (await nextLine()) as Served,
    counters: async () => {
      child.stdin!.write("stats\n");
      return (await nextLine()) as DataPlaneCounters;
    },
  };
}

export async function stopChild(child: ChildProcess): Promise<void> {
  child.stdin!.end();
  await new Promise((ok) => (child.exitCode !== null ? ok(null) : child.once("exit", ok)));
}

/** A raw relay (`argv` + `last`: the target port by default) to `url`'s port, in a process of
 *  its own. */
export async function startRelay(
  argv: string[],
  url: string,
  last = new URL(url).port,
): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(argv[0]!, [...argv.slice(1), last], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const first = await createInterface({ input: child.stdout! })[Symbol.asyncIterator]().next();
  const port = /^ready (\d+)$/.exec(String(first.value ?? ""))?.[1];
  if (!port) throw new Error(`bench: the relay ${argv.join(" ")} did not start`);
  return { url: `http://127.0.0.1:${port}`, child };
}

const TABLE_COLUMNS = [
  "system",
  "req/s",
  "p50 µs",
  "p99 µs",
  "user µs/req",
  "sys µs/req",
  "CPU µs/req",
  "cs/req",
];

export async function benchDataPlane(opts: DataPlaneBenchOptions = {}): Promise<BenchRow[]> {
  const seconds = opts.seconds ?? 5;
  const rounds = opts.rounds ?? 3;
  const trace = opts.traceUpstreams
    ? (what: string) => process.stderr.write(`${Date.now()} ${what}\n`)
    : () => {};
  process.env.HERD_BENCH_TRACE_UPSTREAMS = opts.traceUpstreams ? "1" : "0";
  const serveArgs = (process.env.HERD_BENCH_SERVE_ARGS ?? "").split(" ").filter(Boolean);
  const root = join(fileURLToPath(import.meta.url), "..", "..");
  const a = await startServe(root, serveArgs);
  const b = opts.ab ? await startServe(opts.ab, serveArgs) : undefined;
  // herd with its WebSocket tunnels handed to the native relay (src/dataplane/native-relay.ts):
  // its CPU is the proxy's plus the relay's.
  const n =
    !opts.only || opts.only.includes("ws herd native")
      ? await startServe(root, serveArgs, { HERD_BENCH_NATIVE_RELAY: tunnelRelay() })
      : undefined;
  let nginx: RunningNginx | undefined;
  let nginxMany: RunningNginx | undefined;
  const relays: ChildProcess[] = [];
  const relayTo = async (argv: string[], url: string, last?: string) => {
    const r = await startRelay(argv, url, last);
    relays.push(r.child);
    return { url: r.url, pid: r.child.pid! };
  };
  try {
    const served = a.served;
    nginx = await startNginx(served.direct, await freePort());
    if (!nginx) throw new Error("bench: nginx is not installed; run scripts/setup-bench.sh");
    // The same 50 sessions, routed by nginx to their 50 workers: what any proxy pays there.
    nginxMany = await startNginx(served.direct, await freePort(), served.many);
    if (!nginxMany) throw new Error("bench: nginx vanished");
    const relay = await relayTo([process.execPath, RELAY], served.direct);
    const onreadRelay = await relayTo([process.execPath, RELAY, "onread"], served.direct);
    const cRelayed = await relayTo([cRelay()], served.direct);
    // The C prototype of the fast path (bench/c-proxy, issue 26): SESSION routed to its worker.
    const prototype = await relayTo(
      [cProxy()],
      served.direct,
      `${SESSION}=${new URL(served.direct).port}`,
    );
    const herdPid = a.child.pid!;
    const all: Target[] = [
      // The CPU columns of this row are the worker's own: what it can serve per core.
      { name: "direct", url: served.direct, pid: served.directPid },
      {
        name: "herd",
        url: served.herd,
        headers: HEADERS,
        pid: herdPid,
        counters: a.counters,
        ...(b ? { fresh: "a" as const } : {}),
      },
      ...(b
        ? [
            {
              name: "herd B",
              url: b.served.herd,
              headers: HEADERS,
              pid: b.child.pid!,
              counters: b.counters,
              fresh: "b" as const,
            },
          ]
        : []),
      { name: "nginx", url: nginx.url, pid: nginx.pid },
      { name: "node relay", url: relay.url, pid: relay.pid },
      { name: "node relay (onread)", url: onreadRelay.url, pid: onreadRelay.pid },
      { name: "C relay", url: cRelayed.url, pid: cRelayed.pid },
      { name: "native prototype", url: prototype.url, headers: HEADERS, pid: prototype.pid },
      {
        name: "herd, 50 sessions",
        url: served.herd,
        sessionPerConnection: SESSION,
        pid: herdPid,
        ...(b ? { fresh: "a" as const } : {}),
      },
      ...(b
        ? [
            {
              name: "herd B, 50 sessions",
              url: b.served.herd,
              sessionPerConnection: SESSION,
              pid: b.child.pid!,
              fresh: "b" as const,
            },
          ]
        : []),
      // Like-for-like with "herd, 50 sessions", which needs a wrk thread per connection.
      {
        name: "herd, 50 threads",
        url: served.herd,
        headers: HEADERS,
        threads: CONNECTIONS,
        pid: herdPid,
      },
      {
        name: "nginx, 50 sessions",
        url: nginxMany.url,
        sessionPerConnection: SESSION,
        pid: nginxMany.pid,
      },
      { name: "nginx, 50 threads", url: nginx.url, threads: CONNECTIONS, pid: nginx.pid },
      { name: "node worker: direct", url: served.nodeDirect },
      {
        name: "node worker: herd",
        url: served.herd,
        headers: { "X-Session-ID": NODE_SESSION },
        pid: herdPid,
      },
    ];
    const targets = opts.only ? all.filter((t) => opts.only!.includes(t.name)) : all;
    const results = new Map<string, Measured[]>(targets.map((t) => [t.name, []]));
    const loads: number[] = [];
    let opened = 0;
    let forwarded = 0;
    type Proxy = Awaited<ReturnType<typeof startServe>>;
    const measureRound = async (order: Target[], pair: Record<"a" | "b", Proxy> | undefined) => {
      for (const planned of order) {
        const proc = planned.fresh && pair ? pair[planned.fresh] : undefined;
        const t: Target = proc
          ? {
              ...planned,
              url: proc.served.herd,
              pid: proc.child.pid!,
              ...(planned.counters ? { counters: proc.counters } : {}),
            }
          : planned;
        const run = (s: number) =>
          wrk(`${t.url}/whoami`, {
            seconds: s,
            connections: CONNECTIONS,
            ...(t.headers ? { headers: t.headers } : {}),
            ...(t.sessionPerConnection ? { sessionPerConnection: t.sessionPerConnection } : {}),
            threads: t.threads ?? WRK_THREADS,
          });
        trace(`warm-up ${t.name}`);
        await run(WARMUP_SECONDS);
        await new Promise((ok) => setTimeout(ok, SETTLE_MS));
        trace(`measured run ${t.name}`);
        const before = t.counters ? await t.counters() : undefined;
        const used = t.pid ? usage(t.pid) : undefined;
        const r = await run(seconds);
        trace(`end ${t.name}`);
        if (r.errors > 0) throw new Error(`bench ${t.name}: ${r.errors} errors in ${r.requests}`);
        const now = t.pid ? usage(t.pid) : undefined;
        const per = (x: number) => (x / r.requests) * 1e6;
        results.get(t.name)!.push({
          ...r,
          userUs: used && now ? per(now.user - used.user) : 0,
          systemUs: used && now ? per(now.system - used.system) : 0,
          switches: used && now ? (now.switches - used.switches) / r.requests : 0,
        });
        if (before && t.counters) {
          const after = await t.counters();
          opened += after.upstreamConnections - before.upstreamConnections;
          forwarded += after.forwarded - before.forwarded;
        }
      }
    };
    for (let round = 0; round < rounds; round++) {
      // Rotate who goes first: whatever the machine does over a round hits each system alike.
      const order = targets.map((_, i) => targets[(i + round) % targets.length]!);
      // A/B: each proxy process draws its own lot (where its heap and code land, what V8
      // inlines), worth up to ±10 % of user time for its whole life: two A/A runs of one tree
      // the same evening came out 1.12 × and 0.965 ×. So the A/B rows run on a fresh pair of
      // processes each round, and the medians over rounds are over lots, not over one.
      const pair =
        b && order.some((t) => t.fresh)
          ? { a: await startServe(root, serveArgs), b: await startServe(opts.ab!, serveArgs) }
          : undefined;
      try {
        await measureRound(order, pair);
      } finally {
        if (pair) await Promise.all([stopChild(pair.a.child), stopChild(pair.b.child)]);
      }
      loads.push(load1());
    }
    /** Median over rounds of a's figure ÷ b's in the same round: paired, so load drifts cancel. */
    const paired = (a: string, b: string, of: (m: Measured) => number) => {
      const x = results.get(a);
      const y = results.get(b);
      if (!x || !y) return Number.NaN;
      return median(x.map((m, i) => of(m) / of(y[i]!)));
    };
    const cpuOf = (m: Measured) => m.userUs + m.systemUs;
    const med = (name: string, key: keyof Measured) =>
      results.has(name) ? median(results.get(name)!.map((m) => m[key])) : Number.NaN;
    const cpu = (name: string) =>
      results.has(name) ? median(results.get(name)!.map((m) => m.userUs + m.systemUs)) : Number.NaN;

    const wsRelay = await relayTo([process.execPath, RELAY], served.wsDirect);
    const wsCRelay = await relayTo([cRelay()], served.wsDirect);
    const ws = new Map<string, { rate: number[]; cpuUs: number[] }>();
    type WsTarget = [string, string, Record<string, string>, number[]];
    const wsTargets: WsTarget[] = [
      ["herd", served.herd, WS_HEADERS, [herdPid]],
      ...(b ? [["herd B", b.served.herd, WS_HEADERS, [b.child.pid!]] as WsTarget] : []),
      ...(n
        ? [
            [
              "herd native",
              n.served.herd,
              WS_HEADERS,
              [n.child.pid!, n.served.nativeRelayPid!],
            ] as WsTarget,
          ]
        : []),
      ["node relay", wsRelay.url, {}, [wsRelay.pid]],
      ["C relay", wsCRelay.url, {}, [wsCRelay.pid]],
      ["direct", served.wsDirect, {}, []],
    ];
    const wsWanted = wsTargets.filter(([name]) => !opts.only || opts.only.includes(`ws ${name}`));
    const cpuOfAll = (pids: number[]) =>
      pids.reduce((sum, pid) => {
        const u = usage(pid);
        return sum + u.user + u.system;
      }, 0);
    for (let round = 0; round < rounds; round++) {
      // The order rotates per round, as for the HTTP rows.
      const order = wsWanted.map((_, i) => wsWanted[(i + round) % wsWanted.length]!);
      loads.push(load1());
      for (const [name, url, headers, pids] of order) {
        await wsEcho(url, WARMUP_SECONDS, headers);
        const used = cpuOfAll(pids);
        const rate = await wsEcho(url, seconds, headers);
        const cpuUs = pids.length > 0 ? ((cpuOfAll(pids) - used) / (rate * seconds)) * 1e6 : 0;
        const m = ws.get(name) ?? { rate: [], cpuUs: [] };
        m.rate.push(rate);
        m.cpuUs.push(cpuUs);
        ws.set(name, m);
      }
    }
    const wsMed = (name: string, key: "rate" | "cpuUs") =>
      ws.has(name) ? median(ws.get(name)![key]) : Number.NaN;

    // The detail table, one line per system (medians over the rounds).
    const lines = targets.map((t) => [
      t.name,
      String(Math.round(med(t.name, "rps"))),
      String(med(t.name, "p50")),
      String(med(t.name, "p99")),
      ...(t.pid
        ? [
            String(round(med(t.name, "userUs"), 1)),
            String(round(med(t.name, "systemUs"), 1)),
            String(round(cpu(t.name), 1)),
            String(round(med(t.name, "switches"), 2)),
          ]
        : ["", "", "", ""]),
    ]);
    for (const [name] of wsWanted) {
      const c = wsMed(name, "cpuUs");
      lines.push([
        `ws echo: ${name} (msg/s, CPU µs/msg)`,
        String(Math.round(wsMed(name, "rate"))),
        "",
        "",
        "",
        "",
        c ? String(round(c, 1)) : "",
        "",
      ]);
    }
    const widths = TABLE_COLUMNS.map((h, i) =>
      Math.max(h.length, ...lines.map((l) => l[i]!.length)),
    );
    const fmt = (cells: string[]) =>
      cells
        .map((c, i) => c.padEnd(widths[i]!))
        .join("  ")
        .trimEnd();
    console.log(
      [
        `data plane, C worker (WebSocket: Go worker) unless labelled; medians of ${rounds} rounds × ${seconds} s; load ${loads.join(", ")}`,
        fmt(TABLE_COLUMNS),
        fmt(widths.map((w) => "-".repeat(w))),
        ...lines.map(fmt),
      ].join("\n"),
    );

    return [
      compared(
        "1 session: req/s herd vs nginx",
        med("herd", "rps"),
        "req/s",
        med("nginx", "rps"),
        "ratio ≥ 0.9",
      ),
      compared(
        "1 session: CPU/req herd vs nginx",
        cpu("herd"),
        "µs/req",
        cpu("nginx"),
        "ratio ≤ 1.3",
      ),
      compared(
        "1 session: CPU/req raw Node relay vs the same relay in C",
        cpu("node relay"),
        "µs/req",
        cpu("C relay"),
      ),
      compared(
        "1 session: CPU/req native prototype vs herd",
        cpu("native prototype"),
        "µs/req",
        cpu("herd"),
        "ratio ≤ 0.7",
      ),
      compared(
        "1 session: CPU/req native prototype vs nginx",
        cpu("native prototype"),
        "µs/req",
        cpu("nginx"),
      ),
      compared(
        "1 session: req/s native prototype vs nginx",
        med("native prototype", "rps"),
        "req/s",
        med("nginx", "rps"),
      ),
      compared(
        "1 session: CPU/req herd vs raw Node relay",
        cpu("herd"),
        "µs/req",
        cpu("node relay"),
      ),
      compared(
        "1 session: CPU/req herd vs its own socket layer (Node relay, onread)",
        cpu("herd"),
        "µs/req",
        cpu("node relay (onread)"),
      ),
      compared(
        "1 session: req/s herd vs direct",
        med("herd", "rps"),
        "req/s",
        med("direct", "rps"),
      ),
      compared(
        "1 session: req/s nginx vs direct",
        med("nginx", "rps"),
        "req/s",
        med("direct", "rps"),
      ),
      compared("1 session: p50 herd vs nginx", med("herd", "p50"), "µs", med("nginx", "p50")),
      compared(
        "50 sessions: req/s herd vs nginx",
        med("herd, 50 sessions", "rps"),
        "req/s",
        med("nginx, 50 sessions", "rps"),
        "ratio ≥ 0.9",
      ),
      compared(
        "50 sessions: CPU/req herd vs nginx",
        cpu("herd, 50 sessions"),
        "µs/req",
        cpu("nginx, 50 sessions"),
        "ratio ≤ 1.3",
      ),
      compared(
        "50 wrk threads, 1 session: CPU/req herd vs nginx",
        cpu("herd, 50 threads"),
        "µs/req",
        cpu("nginx, 50 threads"),
      ),
      ...(b
        ? [
            compared("A/B: CPU/req herd vs herd B", cpu("herd"), "µs/req", cpu("herd B")),
            {
              name: "A/B: CPU/req herd ÷ herd B, median of each round's ratio",
              value: round(paired("herd", "herd B", cpuOf), 3),
              unit: "×",
            },
            {
              // herd's own JavaScript is user time; the kernel's share moves with the load.
              name: "A/B: user CPU/req herd ÷ herd B, median of each round's ratio",
              value: round(
                paired("herd", "herd B", (m) => m.userUs),
                3,
              ),
              unit: "×",
            },
            {
              name: "A/B, 50 sessions: CPU/req ÷ herd B, median of each round's ratio",
              value: round(paired("herd, 50 sessions", "herd B, 50 sessions", cpuOf), 3),
              unit: "×",
            },
            compared(
              "A/B: req/s herd vs herd B",
              med("herd", "rps"),
              "req/s",
              med("herd B", "rps"),
            ),
            compared(
              "A/B, 50 sessions: CPU/req herd vs herd B",
              cpu("herd, 50 sessions"),
              "µs/req",
              cpu("herd B, 50 sessions"),
            ),
            compared(
              "A/B: ws msg/s herd vs herd B",
              wsMed("herd", "rate"),
              "msg/s",
              wsMed("herd B", "rate"),
            ),
            compared(
              "A/B: ws CPU/msg herd vs herd B",
              wsMed("herd", "cpuUs"),
              "µs/msg",
              wsMed("herd B", "cpuUs"),
            ),
          ]
        : []),
      compared(
        "node worker (the bottleneck): req/s herd vs direct",
        med("node worker: herd", "rps"),
        "req/s",
        med("node worker: direct", "rps"),
      ),
      {
        name: "upstream connections opened per request (steady state)",
        value: round(opened / Math.max(1, forwarded), 6),
        unit: "conn/req",
        goal: "≤ 0",
      },
      compared(
        "websocket echo msg/s: herd vs raw Node relay",
        wsMed("herd", "rate"),
        "msg/s",
        wsMed("node relay", "rate"),
        "ratio ≥ 1",
      ),
      compared(
        "websocket CPU/msg: herd vs raw Node relay",
        wsMed("herd", "cpuUs"),
        "µs/msg",
        wsMed("node relay", "cpuUs"),
      ),
      ...(n
        ? [
            compared(
              "websocket CPU/msg: herd native relay vs herd (pipe)",
              wsMed("herd native", "cpuUs"),
              "µs/msg",
              wsMed("herd", "cpuUs"),
              "ratio ≤ 0.7",
            ),
            compared(
              "websocket msg/s: herd native relay vs raw Node relay",
              wsMed("herd native", "rate"),
              "msg/s",
              wsMed("node relay", "rate"),
              "ratio ≥ 1",
            ),
            compared(
              "websocket CPU/msg: herd native relay vs C relay",
              wsMed("herd native", "cpuUs"),
              "µs/msg",
              wsMed("C relay", "cpuUs"),
            ),
          ]
        : []),
      {
        name: `load average beside them (median of ${rounds} rounds × ${seconds} s)`,
        value: round(median(loads), 2),
        unit: "load1",
      },
    ];
  } finally {
    await nginx?.stop();
    await nginxMany?.stop();
    for (const child of relays) await stopChild(child);
    await stopChild(a.child);
    if (b) await stopChild(b.child);
    if (n) await stopChild(n.child);
  }
}

if (process.argv[1] === SELF) {
  const at = (name: string) => process.argv.indexOf(name);
  const arg = (name: string) => (at(name) > 0 ? process.argv[at(name) + 1] : undefined);
  if (at("--serve") > 0) {
    await serve();
  } else {
    const seconds = arg("--seconds");
    const rounds = arg("--rounds");
    const ab = arg("--ab");
    const only = arg("--only");
    const rows = await benchDataPlane({
      traceUpstreams: at("--trace-upstreams") > 0,
      ...(seconds !== undefined ? { seconds: Number(seconds) } : {}),
      ...(rounds !== undefined ? { rounds: Number(rounds) } : {}),
      ...(ab !== undefined ? { ab } : {}),
      // Names hold ", " ("herd, 50 sessions"): the list is split at commas not followed by a space.
      ...(only !== undefined ? { only: only.split(/,(?! )/) } : {}),
    });
    const { formatTable, withVerdict } = await import("./report.ts");
    console.log(formatTable(rows.map(withVerdict)));
  }
}
