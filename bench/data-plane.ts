// Data-plane benchmark: the same fixture worker reached directly and through herd's data plane.
// HTTP req/s and p50/p99 (autocannon, keep-alive clients), WebSocket echo msgs/s, and new
// upstream connections per request at steady state (goal: 0).
//
// The proxies run in a child process (`--serve`: herd + data plane, and with `--libraries`
// http-proxy / http-proxy-3 with keep-alive agents for the choice of proxy core), so the load
// generator never shares a thread with the proxy it measures. Direct and proxied runs
// alternate in rounds and each side's best round counts, so a noisy shared machine skews
// both alike.
//
// Standalone: `npx tsx bench/data-plane.ts [--seconds N] [--rounds N] [--libraries]`.
import { execFileSync, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { Agent, createServer, request } from "node:http";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import autocannon from "autocannon";
import httpProxy from "http-proxy";
import { createProxyServer as createProxy3 } from "http-proxy-3";
import WebSocket from "ws";
import { type DataPlaneCounters, startDataPlane } from "../src/dataplane/index.ts";
import { Herd, resolvePoolOptions } from "../src/pool/index.ts";
import { freePort } from "../test/helpers/ports.ts";
import { WORKER_FIXTURE as WORKER } from "../test/helpers/worker.ts";
import { type RunningNginx, startNginx } from "./nginx.ts";
import { type BenchRow, compared, formatTable, round } from "./report.ts";

export interface DataPlaneBenchOptions {
  /** Seconds per measured run (default 2). */
  seconds?: number;
  /** Alternating direct/proxied rounds; the best of each side counts (default 2). */
  rounds?: number;
  /** Also measure http-proxy, http-proxy-3 (keep-alive agents) and a bare node:http pipe. */
  libraries?: boolean;
}

const SELF = fileURLToPath(import.meta.url);
const SESSION = "bench";
const CONNECTIONS = 10;
const HEADERS = { "X-Session-ID": SESSION };
const CLOCK_TICKS =
  Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;

/** What the `--serve` child reports on its first stdout line. */
interface Served {
  direct: string;
  herd: string;
  libraries: Record<string, string>;
}

// ---- the proxy process ----

async function serve(libraries: boolean): Promise<void> {
  const herd = await Herd.start([
    resolvePoolOptions({ name: "bench", command: [process.execPath, WORKER], min: 0, max: 1 }),
  ]);
  const dp = await startDataPlane(herd, { listen: "127.0.0.1:0" });
  const session = await herd.acquire("bench", SESSION);
  const direct = `http://${session.workerAddress}`;
  const urls: Record<string, string> = {};
  const servers = [];
  if (libraries) {
    const agent = () => new Agent({ keepAlive: true, maxFreeSockets: 256 });
    const hp = httpProxy.createProxyServer({ target: direct, agent: agent() });
    const hp3 = createProxy3({ target: direct, agent: agent() });
    // The floor: node:http in and out with a keep-alive agent, no routing, no header rules.
    const bareAgent = agent();
    const bare = createServer((req, res) => {
      const up = request(
        `${direct}${req.url}`,
        { method: req.method, headers: req.headers, agent: bareAgent },
        (r) => {
          res.writeHead(r.statusCode ?? 502, r.headers);
          r.pipe(res);
        },
      );
      up.on("error", () => res.destroy());
      req.pipe(up);
    });
    const candidates = {
      "http-proxy (keep-alive agent)": createServer((req, res) => hp.web(req, res)),
      "http-proxy-3 (keep-alive agent)": createServer((req, res) => hp3.web(req, res)),
      "bare node:http pipe": bare,
    };
    for (const [name, server] of Object.entries(candidates)) {
      await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
      urls[name] = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
      servers.push(server);
    }
  }
  const served: Served = { direct, herd: dp.url, libraries: urls };
  process.stdout.write(`${JSON.stringify(served)}\n`);
  // Each stdin line asks for the counters; stdin closing means stop.
  const lines = createInterface({ input: process.stdin });
  for await (const _ of lines) process.stdout.write(`${JSON.stringify(dp.counters)}\n`);
  for (const server of servers) {
    server.closeAllConnections();
    server.close();
  }
  await dp.close();
  await herd.close();
}

// ---- the load generator ----

interface HttpResult {
  rps: number;
  p50: number;
  p99: number;
  requests: number;
}

/** CPU seconds (user + system) the process has used so far, from /proc. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

async function http(
  url: string,
  seconds: number,
  headers: Record<string, string>,
): Promise<HttpResult> {
  const r = await autocannon({
    url: `${url}/whoami`,
    connections: CONNECTIONS,
    duration: seconds,
    headers,
  });
  if (r.non2xx > 0 || r.errors > 0)
    throw new Error(`bench ${url}: ${r.non2xx} non-2xx, ${r.errors} errors`);
  return {
    rps: r.requests.average,
    p50: r.latency.p50,
    p99: r.latency.p99,
    requests: r.requests.total,
  };
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

function bestRps(runs: HttpResult[]): HttpResult {
  return runs.reduce((a, b) => (b.rps > a.rps ? b : a));
}

export async function benchDataPlane(opts: DataPlaneBenchOptions = {}): Promise<BenchRow[]> {
  const seconds = opts.seconds ?? 2;
  const rounds = opts.rounds ?? 2;
  const child = spawn(
    process.execPath,
    ["--import", "tsx", SELF, "--serve", ...(opts.libraries ? ["--libraries"] : [])],
    { stdio: ["pipe", "pipe", "inherit"] },
  );
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
  try {
    const served = (await nextLine()) as Served;
    await http(served.herd, 1, HEADERS); // warm-up: agents, JIT

    nginx = await startNginx(served.direct, await freePort());
    if (!nginx)
      process.stderr.write("bench: nginx not installed (scripts/setup-bench.sh); no nginx row\n");
    // [name, url, headers, pid whose CPU the proxy burns]
    const targets: [string, string, Record<string, string>, number][] = [
      ["herd", served.herd, HEADERS, child.pid!],
      ...(nginx
        ? [
            ["nginx (upstream keepalive)", nginx.url, {}, nginx.pid] as [
              string,
              string,
              Record<string, string>,
              number,
            ],
          ]
        : []),
      ...Object.entries(served.libraries).map(
        ([n, u]): [string, string, Record<string, string>, number] => [n, u, {}, child.pid!],
      ),
    ];
    const runs = new Map<string, HttpResult[]>([
      ["direct", []],
      ...targets.map(([n]): [string, HttpResult[]] => [n, []]),
    ]);
    let opened = 0;
    let forwarded = 0;
    // Proxy CPU per request: robust to a loaded machine, unlike req/s (on 2 cores, client,
    // proxy and worker compete for CPU, so the proxied req/s ratio is bounded well below 1).
    const cpu = new Map<string, { seconds: number; requests: number }>();
    for (let i = 0; i < rounds; i++) {
      runs.get("direct")!.push(await http(served.direct, seconds, {}));
      for (const [name, url, headers, pid] of targets) {
        // A few requests first re-open what the worker's keep-alive timeout closed while
        // the other targets ran; what the measured run then opens is the steady state.
        await autocannon({ url: `${url}/whoami`, connections: CONNECTIONS, amount: 100, headers });
        const before = name === "herd" ? await counters() : undefined;
        const cpuBefore = cpuSeconds(pid);
        const result = await http(url, seconds, headers);
        runs.get(name)!.push(result);
        const used = cpu.get(name) ?? { seconds: 0, requests: 0 };
        cpu.set(name, {
          seconds: used.seconds + cpuSeconds(pid) - cpuBefore,
          requests: used.requests + result.requests,
        });
        if (before) {
          const after = await counters();
          opened += after.upstreamConnections - before.upstreamConnections;
          forwarded += after.forwarded - before.forwarded;
        }
      }
    }
    const direct = bestRps(runs.get("direct")!);
    const herd = bestRps(runs.get("herd")!);

    const wsDirect: number[] = [];
    const wsHerd: number[] = [];
    for (let i = 0; i < rounds; i++) {
      wsDirect.push(await wsEcho(served.direct, seconds, {}));
      wsHerd.push(await wsEcho(served.herd, seconds, HEADERS));
    }

    const rows: BenchRow[] = [
      compared("http req/s: herd vs direct", herd.rps, "req/s", direct.rps, "ratio ≥ 0.6"),
      compared("http p50: herd vs direct", herd.p50, "ms", direct.p50),
      compared("http p99: herd vs direct", herd.p99, "ms", direct.p99),
      {
        name: "http p99 added by herd",
        value: round(herd.p99 - direct.p99),
        unit: "ms",
        goal: "≤ 2 ms",
      },
      {
        name: "upstream connections opened per request (steady state)",
        value: round(opened / Math.max(1, forwarded), 6),
        unit: "conn/req",
        goal: "0",
      },
      compared(
        "websocket echo msgs/s: herd vs direct",
        Math.max(...wsHerd),
        "msg/s",
        Math.max(...wsDirect),
        "ratio ≥ 0.8",
      ),
    ];
    const cpuPerRequest = (name: string) => {
      const c = cpu.get(name)!;
      return (c.seconds / Math.max(1, c.requests)) * 1e6;
    };
    rows.push({
      name: "proxy CPU per request: herd",
      value: round(cpuPerRequest("herd")),
      unit: "µs/req",
    });
    for (const [name] of targets.slice(1)) {
      const r = bestRps(runs.get(name)!);
      rows.push(
        compared(
          `http req/s: ${name} vs direct`,
          r.rps,
          "req/s",
          direct.rps,
          "herd's ratio ≥ this",
        ),
      );
      rows.push(compared(`http p99: ${name} vs direct`, r.p99, "ms", direct.p99));
      // ratio < 1: herd needs less CPU per request than this library.
      rows.push(
        compared(
          `proxy CPU per request: herd vs ${name}`,
          cpuPerRequest("herd"),
          "µs/req",
          cpuPerRequest(name),
        ),
      );
    }
    return rows;
  } finally {
    await nginx?.stop();
    child.stdin!.end();
    await new Promise((ok) => (child.exitCode !== null ? ok(null) : child.once("exit", ok)));
  }
}

if (process.argv[1] === SELF) {
  const at = (name: string) => process.argv.indexOf(name);
  const num = (name: string) => (at(name) > 0 ? Number(process.argv[at(name) + 1]) : undefined);
  const libraries = at("--libraries") > 0;
  if (at("--serve") > 0) {
    await serve(libraries);
  } else {
    const seconds = num("--seconds");
    const rounds = num("--rounds");
    const rows = await benchDataPlane({
      libraries,
      ...(seconds !== undefined ? { seconds } : {}),
      ...(rounds !== undefined ? { rounds } : {}),
    });
    console.log(formatTable(rows));
  }
}
