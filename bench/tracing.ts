// Tracing's cost on the data plane (issue 21): proxy CPU per request with tracing off (no
// tracer: the one check per request), on at 100 % sampling (OTEL_TRACES_SAMPLER=always_on:
// a span per request, exported over OTLP/HTTP to a sink in this process) and on with every
// span sampled out (always_off: the tracer installed, nothing recorded), on both forwarding
// paths: the fast path and node:http's (each request sends two Cookie lines, which the fast
// path leaves to node:http; wrk's -H is one field per name, so the second rides in the value).
//
// Each configuration is its own proxy process (`--serve MODE`), all up at once, all proxying
// one session's fixture worker of their own; rounds interleave them (rotating the order) and
// each figure is the median over rounds of the proxy's CPU (user + system, /proc) per request
// under wrk, 50 keep-alive connections. The load average is printed beside the figures.
//   npx tsx bench/tracing.ts [--seconds N] [--rounds N]
import { execFileSync, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import type { Tracer } from "../src/core/index.ts";
import { startDataPlane } from "../src/dataplane/index.ts";
import { Herd, resolvePoolOptions } from "../src/pool/index.ts";
import { startTracing } from "../src/telemetry/index.ts";
import { decodeTraces } from "../test/helpers/otlp-receiver.ts";
import { WORKER_FIXTURE as WORKER } from "../test/helpers/worker.ts";
import { type BenchRow, compared, load1, median, round } from "./report.ts";
import { wrk } from "./wrk.ts";

export interface TracingBenchOptions {
  /** Seconds per measured run (default 5). */
  seconds?: number;
  /** Interleaved rounds; each figure is the median over them (default 3). */
  rounds?: number;
}

const SELF = fileURLToPath(import.meta.url);
const SESSION = "bench";
const CONNECTIONS = 50;
const WARMUP_SECONDS = 1;
const SETTLE_MS = 300;
const MODES = ["off", "always_on", "always_off"] as const;
type Mode = (typeof MODES)[number];
const PATHS = {
  fast: { "X-Session-ID": SESSION },
  "node-http": { "X-Session-ID": SESSION, Cookie: "a=1\r\nCookie: b=2" },
} as const;
const CLOCK_TICKS =
  Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;

const quiet = { debug() {}, info() {}, warn() {}, error() {} };

async function serve(mode: Mode): Promise<void> {
  const herd = await Herd.start([
    resolvePoolOptions({ name: "bench", command: [process.execPath, WORKER], min: 0, max: 1 }),
  ]);
  let tracer: Tracer | undefined;
  if (mode !== "off") {
    process.env.OTEL_TRACES_SAMPLER = mode;
    tracer = startTracing(quiet);
    if (!tracer) throw new Error("bench: tracing did not start");
  }
  const dp = await startDataPlane(herd, { listen: "127.0.0.1:0", ...(tracer && { tracer }) });
  await herd.acquire("bench", SESSION);
  process.stdout.write(`${JSON.stringify({ url: dp.url })}\n`);
  for await (const _ of createInterface({ input: process.stdin })) {
    // stdin closing means stop.
  }
  await dp.close();
  await herd.close();
  await tracer?.shutdown();
}

function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/** An OTLP/HTTP endpoint that takes every export and counts its spans. */
async function otlpSink(): Promise<{ url: string; spans: () => number; close: () => void }> {
  let spans = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      spans += decodeTraces(Buffer.concat(chunks)).length;
      res.writeHead(200, { "content-type": "application/x-protobuf" }).end();
    });
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    spans: () => spans,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

export async function benchTracing(opts: TracingBenchOptions = {}): Promise<BenchRow[]> {
  const seconds = opts.seconds ?? 5;
  const rounds = opts.rounds ?? 3;
  const sink = await otlpSink();
  const children = MODES.map((mode) =>
    spawn(process.execPath, ["--import", "tsx", SELF, "--serve", mode], {
      stdio: ["pipe", "pipe", "inherit"],
      env: { ...process.env, OTEL_EXPORTER_OTLP_ENDPOINT: sink.url, OTEL_SERVICE_NAME: "bench" },
    }),
  );
  // The proxies send their last spans as they stop.
  const stopAll = () => {
    for (const child of children) child.stdin!.end();
    return Promise.all(
      children.map(
        (child) => new Promise((ok) => (child.exitCode !== null ? ok(0) : child.once("exit", ok))),
      ),
    );
  };
  try {
    const urls = await Promise.all(
      children.map(async (child) => {
        const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
        const { value, done } = await lines.next();
        if (done) throw new Error("bench: a proxy process exited early");
        return (JSON.parse(value) as { url: string }).url;
      }),
    );
    const cpu = new Map<string, number[]>();
    /** Requests the 100 %-sampled proxy served, warm-ups included: each one a span. */
    let sampledRequests = 0;
    const loads: number[] = [];
    const targets = MODES.flatMap((mode, i) =>
      (Object.keys(PATHS) as (keyof typeof PATHS)[]).map((path) => ({
        key: `${path} ${mode}`,
        url: urls[i]!,
        pid: children[i]!.pid!,
        headers: PATHS[path],
      })),
    );
    for (let r = 0; r < rounds; r++) {
      const order = targets.map((_, i) => targets[(i + r) % targets.length]!);
      for (const t of order) {
        const run = async (s: number) => {
          const result = await wrk(`${t.url}/whoami`, {
            seconds: s,
            connections: CONNECTIONS,
            headers: t.headers,
          });
          // wrk stops with requests in flight: those are served too, but not counted here.
          if (t.key.endsWith("always_on")) sampledRequests += result.requests;
          return result;
        };
        await run(WARMUP_SECONDS);
        await new Promise((ok) => setTimeout(ok, SETTLE_MS));
        const before = cpuSeconds(t.pid);
        const result = await run(seconds);
        if (result.errors > 0) {
          throw new Error(`bench ${t.key}: ${result.errors} errors in ${result.requests}`);
        }
        const us = ((cpuSeconds(t.pid) - before) / result.requests) * 1e6;
        cpu.set(t.key, [...(cpu.get(t.key) ?? []), us]);
      }
      loads.push(load1());
    }
    const med = (key: string) => median(cpu.get(key)!);
    const rows: BenchRow[] = [];
    for (const path of Object.keys(PATHS)) {
      rows.push(
        compared(
          `${path}: proxy CPU/req, tracing on (100 % sampled) vs off`,
          med(`${path} always_on`),
          "µs/req",
          med(`${path} off`),
        ),
        compared(
          `${path}: proxy CPU/req, tracing on (all sampled out) vs off`,
          med(`${path} always_off`),
          "µs/req",
          med(`${path} off`),
        ),
      );
    }
    await stopAll();
    rows.push(
      compared("spans received vs requests sampled", sink.spans(), "spans", sampledRequests),
    );
    rows.push({ name: "load average over the rounds", value: round(median(loads)), unit: "" });
    return rows;
  } finally {
    await stopAll();
    sink.close();
  }
}

if (process.argv.includes("--serve")) {
  await serve(process.argv[process.argv.indexOf("--serve") + 1] as Mode);
} else if (process.argv[1] === SELF) {
  const arg = (name: string) => {
    const i = process.argv.indexOf(name);
    return i < 0 ? undefined : Number(process.argv[i + 1]);
  };
  const { formatTable } = await import("./report.ts");
  const rows = await benchTracing({ seconds: arg("--seconds"), rounds: arg("--rounds") });
  console.log(formatTable(rows));
}
