// Data-plane benchmark (issue 13 item 3's figures): the same fixture worker reached directly,
// through herd's data plane and through nginx, with wrk (µs latency) on 50 keep-alive
// connections: one session on all of them, then 50 sessions, one per connection (50 workers).
// Also WebSocket echo through herd vs a raw Node TCP relay, and new upstream connections per
// request at steady state.
//
// Fair by construction: every system gets the same warm-up run right before its measured run;
// rounds interleave the systems (rotating their order) and each figure is the median over
// rounds; the load average is printed beside them. Proxy CPU per request (user + system of
// the proxy process, from /proc) is the figure least moved by a loaded machine.
//
// Reading the 50-session figures: wrk's request headers are per thread (its request() does
// not know the connection), so one X-Session-ID per connection takes a thread per connection.
// The comparison is therefore made like-for-like: 50 sessions against one session, both on 50
// wrk threads, and nginx routing the same 50 sessions to the same 50 workers (a map on
// X-Session-ID) against nginx on one session with 50 threads. Both proxies pay about twice
// the CPU per request with 50 workers (nginx somewhat more than herd): 50 worker processes
// answering one request each on two cores wake the proxy once per request, where one busy
// worker's answers arrive in bursts that one wake-up serves (epoll waits per request 0.05
// against 1.5 under strace; context switches per request 0.6 against 1.2 from /proc). The
// workers share one cpu cgroup (herd-<pid>, weight 1024) under both proxies alike.
//
// Steady state, for the upstream-connection count: each measured run starts SETTLE_MS after
// its warm-up (see there); --trace-upstreams prints every new upstream connection, with why.
//
// The proxies run in a child process (`--serve`), so the load generator never shares a
// thread with the proxy it measures. Standalone:
//   npx tsx bench/data-plane.ts [--seconds N] [--rounds N] [--trace-upstreams]
import { execFileSync, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { connect, createServer } from "node:net";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import WebSocket from "ws";
import { type DataPlaneCounters, startDataPlane } from "../src/dataplane/index.ts";
import { Herd, resolvePoolOptions } from "../src/pool/index.ts";
import { freePort } from "../test/helpers/ports.ts";
import { WORKER_FIXTURE as WORKER } from "../test/helpers/worker.ts";
import { type RunningNginx, startNginx } from "./nginx.ts";
import { type BenchRow, compared, formatTable, load1, median, round } from "./report.ts";
import { type WrkResult, wrk } from "./wrk.ts";

export interface DataPlaneBenchOptions {
  /** Seconds per measured run (default 5). */
  seconds?: number;
  /** Interleaved rounds; each figure is the median over them (default 3). */
  rounds?: number;
  /** Print each new upstream connection (with its reason) and each run's start and end. */
  traceUpstreams?: boolean;
}

const SELF = fileURLToPath(import.meta.url);
const SESSION = "bench";
const MANY = 50;
const CONNECTIONS = 50;
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
const CLOCK_TICKS =
  Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;

/** What the `--serve` child reports on its first stdout line. */
interface Served {
  direct: string;
  herd: string;
  /** A raw TCP relay to the same worker: the floor for proxying WebSocket bytes. */
  tcpRelay: string;
  /** Session `${SESSION}-${i}` → its worker's URL. */
  many: Record<string, string>;
}

// ---- the proxy process ----

async function serve(): Promise<void> {
  const herd = await Herd.start([
    resolvePoolOptions({
      name: "bench",
      command: [process.execPath, WORKER],
      min: 0,
      max: MANY + 1,
      queueLimit: MANY + 1,
    }),
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
  const dp = await startDataPlane(herd, { listen: "127.0.0.1:0", logger });
  // Every session the runs use exists before the first run: cold starts are another bench.
  const [session, ...many] = await Promise.all([
    herd.acquire("bench", SESSION),
    ...Array.from({ length: MANY }, (_, i) => herd.acquire("bench", `${SESSION}-${i}`)),
  ]);
  const relay = createServer((client) => {
    const upstream = connect(Number(session!.workerAddress.split(":")[1]), "127.0.0.1");
    client.pipe(upstream).pipe(client);
    client.on("error", () => upstream.destroy());
    upstream.on("error", () => client.destroy());
  });
  await new Promise<void>((ok) => relay.listen(0, "127.0.0.1", ok));
  const served: Served = {
    direct: `http://${session!.workerAddress}`,
    herd: dp.url,
    tcpRelay: `http://127.0.0.1:${(relay.address() as { port: number }).port}`,
    many: Object.fromEntries(many.map((s) => [s.id, `http://${s.workerAddress}`])),
  };
  process.stdout.write(`${JSON.stringify(served)}\n`);
  // Each stdin line asks for the counters; stdin closing means stop.
  for await (const _ of createInterface({ input: process.stdin })) {
    process.stdout.write(`${JSON.stringify(dp.counters)}\n`);
  }
  relay.close();
  await dp.close();
  await herd.close();
}

// ---- the load generator ----

/** CPU seconds (user + system) the process has used so far, from /proc. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/** CONNECTIONS sockets each echoing one 64-byte message at a time; messages per second. */
async function wsEcho(
  url: string,
  seconds: number,
  headers: Record<string, string>,
): Promise<number> {
  const sockets = await Promise.all(
    Array.from(
      { length: CONNECTIONS },
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
  /** wrk threads (default 1). */
  threads?: number;
  /** The process whose CPU the proxying burns (none for direct). */
  pid?: number;
}

interface Measured extends WrkResult {
  /** Proxy CPU per request, µs. */
  cpuUs: number;
}

export async function benchDataPlane(opts: DataPlaneBenchOptions = {}): Promise<BenchRow[]> {
  const seconds = opts.seconds ?? 5;
  const rounds = opts.rounds ?? 3;
  const trace = opts.traceUpstreams
    ? (what: string) => process.stderr.write(`${Date.now()} ${what}\n`)
    : () => {};
  const child = spawn(process.execPath, ["--import", "tsx", SELF, "--serve"], {
    stdio: ["pipe", "pipe", "inherit"],
    env: { ...process.env, HERD_BENCH_TRACE_UPSTREAMS: opts.traceUpstreams ? "1" : "0" },
  });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const nextLine = async () => {
    const { value, done } = await lines.next();
    if (done) throw new Error("bench: the proxy process exited early");
    return JSON.parse(value) as unknown;
  };
  const counters = async () => {
    child.stdin!.write("stats\n");
    return (await nextLine()) as DataPlaneCounters;
  };
  let nginx: RunningNginx | undefined;
  let nginxMany: RunningNginx | undefined;
  try {
    const served = (await nextLine()) as Served;
    nginx = await startNginx(served.direct, await freePort());
    if (!nginx) throw new Error("bench: nginx is not installed; run scripts/setup-bench.sh");
    // The same 50 sessions, routed by nginx to their 50 workers: what any proxy pays there.
    nginxMany = await startNginx(served.direct, await freePort(), served.many);
    if (!nginxMany) throw new Error("bench: nginx vanished");
    const targets: Target[] = [
      { name: "direct", url: served.direct },
      { name: "herd", url: served.herd, headers: HEADERS, pid: child.pid! },
      { name: "nginx", url: nginx.url, pid: nginx.pid },
      {
        name: "herd, 50 sessions",
        url: served.herd,
        sessionPerConnection: SESSION,
        pid: child.pid!,
      },
      // Like-for-like with "herd, 50 sessions", which needs a wrk thread per connection.
      {
        name: "herd, 50 threads",
        url: served.herd,
        headers: HEADERS,
        threads: CONNECTIONS,
        pid: child.pid!,
      },
      {
        name: "nginx, 50 sessions",
        url: nginxMany.url,
        sessionPerConnection: SESSION,
        pid: nginxMany.pid,
      },
      {
        name: "nginx, 50 threads",
        url: nginx.url,
        threads: CONNECTIONS,
        pid: nginx.pid,
      },
    ];
    const results = new Map<string, Measured[]>(targets.map((t) => [t.name, []]));
    const loads: number[] = [];
    let opened = 0;
    let forwarded = 0;
    for (let round = 0; round < rounds; round++) {
      // Rotate who goes first: whatever the machine does over a round hits each system alike.
      const order = targets.map((_, i) => targets[(i + round) % targets.length]!);
      for (const t of order) {
        const run = (s: number) =>
          wrk(`${t.url}/whoami`, {
            seconds: s,
            connections: CONNECTIONS,
            ...(t.headers ? { headers: t.headers } : {}),
            ...(t.sessionPerConnection ? { sessionPerConnection: t.sessionPerConnection } : {}),
            ...(t.threads ? { threads: t.threads } : {}),
          });
        trace(`warm-up ${t.name}`);
        await run(WARMUP_SECONDS);
        await new Promise((ok) => setTimeout(ok, SETTLE_MS));
        trace(`measured run ${t.name}`);
        const before = t.name === "herd" ? await counters() : undefined;
        const cpuBefore = t.pid ? cpuSeconds(t.pid) : 0;
        const r = await run(seconds);
        trace(`end ${t.name}`);
        if (r.errors > 0) throw new Error(`bench ${t.name}: ${r.errors} errors in ${r.requests}`);
        const cpuUs = t.pid ? ((cpuSeconds(t.pid) - cpuBefore) / r.requests) * 1e6 : 0;
        results.get(t.name)!.push({ ...r, cpuUs });
        if (before) {
          const after = await counters();
          opened += after.upstreamConnections - before.upstreamConnections;
          forwarded += after.forwarded - before.forwarded;
        }
      }
      loads.push(load1());
    }
    const med = (name: string, key: keyof Measured) =>
      median(results.get(name)!.map((m) => m[key]));

    const ws = { herd: [] as number[], relay: [] as number[] };
    for (let round = 0; round < rounds; round++) {
      for (const [name, url, headers] of [
        ["herd", served.herd, HEADERS],
        ["relay", served.tcpRelay, {}],
      ] as const) {
        await wsEcho(url, WARMUP_SECONDS, headers);
        ws[name].push(await wsEcho(url, seconds, headers));
      }
    }

    return [
      compared(
        "1 session, 50 conns: req/s herd vs direct",
        med("herd", "rps"),
        "req/s",
        med("direct", "rps"),
        "ratio ≥ 0.6",
      ),
      compared(
        "1 session, 50 conns: proxy CPU/req herd vs nginx",
        med("herd", "cpuUs"),
        "µs/req",
        med("nginx", "cpuUs"),
        "ratio ≤ 2",
      ),
      compared(
        "1 session, 50 conns: req/s nginx vs direct",
        med("nginx", "rps"),
        "req/s",
        med("direct", "rps"),
      ),
      compared("1 session: p50 herd vs direct", med("herd", "p50"), "µs", med("direct", "p50")),
      compared("1 session: p99 herd vs direct", med("herd", "p99"), "µs", med("direct", "p99")),
      compared("1 session: p50 nginx vs direct", med("nginx", "p50"), "µs", med("direct", "p50")),
      compared(
        "50 sessions vs 1 session, both on 50 wrk threads: proxy CPU/req",
        med("herd, 50 sessions", "cpuUs"),
        "µs/req",
        med("herd, 50 threads", "cpuUs"),
        "ratio ≤ 1.2",
      ),
      compared(
        "nginx, the same: 50 sessions vs 1 session on 50 wrk threads: CPU/req",
        med("nginx, 50 sessions", "cpuUs"),
        "µs/req",
        med("nginx, 50 threads", "cpuUs"),
      ),
      compared(
        "50 sessions, 50 wrk threads: proxy CPU/req herd vs nginx",
        med("herd, 50 sessions", "cpuUs"),
        "µs/req",
        med("nginx, 50 sessions", "cpuUs"),
      ),
      compared(
        "50 sessions (50 wrk threads) vs 1 session (1 thread): proxy CPU/req",
        med("herd, 50 sessions", "cpuUs"),
        "µs/req",
        med("herd", "cpuUs"),
      ),
      compared(
        "1 session: proxy CPU/req on 50 wrk threads vs 1",
        med("herd, 50 threads", "cpuUs"),
        "µs/req",
        med("herd", "cpuUs"),
      ),
      compared(
        "50 sessions, 50 conns: req/s vs 1 session",
        med("herd, 50 sessions", "rps"),
        "req/s",
        med("herd", "rps"),
      ),
      {
        name: "upstream connections opened per request (steady state)",
        value: round(opened / Math.max(1, forwarded), 6),
        unit: "conn/req",
        goal: "≤ 0",
      },
      compared(
        "websocket echo msgs/s: herd vs raw TCP relay",
        median(ws.herd),
        "msg/s",
        median(ws.relay),
        "ratio ≥ 1",
      ),
      {
        name: `load average beside them (median of ${rounds} rounds × ${seconds} s)`,
        value: round(median(loads), 2),
        unit: "load1",
      },
    ];
  } finally {
    await nginx?.stop();
    await nginxMany?.stop();
    child.stdin!.end();
    await new Promise((ok) => (child.exitCode !== null ? ok(null) : child.once("exit", ok)));
  }
}

if (process.argv[1] === SELF) {
  const at = (name: string) => process.argv.indexOf(name);
  const num = (name: string) => (at(name) > 0 ? Number(process.argv[at(name) + 1]) : undefined);
  if (at("--serve") > 0) {
    await serve();
  } else {
    const seconds = num("--seconds");
    const rounds = num("--rounds");
    const rows = await benchDataPlane({
      traceUpstreams: at("--trace-upstreams") > 0,
      ...(seconds !== undefined ? { seconds } : {}),
      ...(rounds !== undefined ? { rounds } : {}),
    });
    console.log(formatTable(rows));
  }
}
