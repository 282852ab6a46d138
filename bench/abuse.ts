// Abuse benchmark, the heavy variant of test/abuse/slow-bodies.spec.ts: N connections (default
// 10,000) each send complete headers of an upload and then trickle its body at 1 byte/s,
// against a daemon whose soft open-files limit is set low (default 4096) so the flood is far
// larger than what it may hold. Two floods: from one client address (the per-client cap
// stops it) and spread over 20 loopback addresses (the global cap stops it). Measured: how
// many connections were refused with 503, the daemon's peak descriptors against its limit, an
// established session (from another address) during the flood against the same before it,
// whether a new session (a new worker) still starts, and when the trickles were cut. Then the
// same number of idle pre-auth connections against the control plane (HTTP/2 preface only,
// or a partial HTTP/1.1 head): how many it holds, its descriptors, /healthz meanwhile, and
// when the header deadline (`--body-timeout` too) closed them all.
//
// herd runs in a child process (`--serve`) under `ulimit -n`, so the load generator never
// shares its thread or its descriptors.
//
// Standalone: `npx tsx bench/abuse.ts [--connections N] [--nofile N] [--body-timeout MS]
// [--addresses N]`; or `npm run bench -- abuse`.
import { spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { startDataPlane } from "../src/dataplane/index.ts";
import { fdBudget } from "../src/limits/index.ts";
import { Herd, resolvePoolOptions } from "../src/pool/index.ts";
import { startControlPlane } from "../src/server/index.ts";
import { WORKER_FIXTURE as WORKER } from "../test/helpers/worker.ts";
import { type BenchRow, compared, formatTable, percentile, round } from "./report.ts";

const SELF = fileURLToPath(import.meta.url);

export interface AbuseBenchOptions {
  connections?: number;
  /** Soft RLIMIT_NOFILE of the daemon (default 4096). */
  nofile?: number;
  /** data.body_timeout of the daemon (default 5000 ms). */
  bodyTimeoutMs?: number;
  /** Loopback addresses the flood comes from (default: one run with 1, one with 20). */
  addresses?: number[];
}

// ---- the daemon process ----

async function serve(bodyTimeoutMs: number): Promise<void> {
  const herd = await Herd.start([
    resolvePoolOptions({ name: "bench", command: [process.execPath, WORKER], min: 0, max: 4 }),
  ]);
  const dp = await startDataPlane(herd, { listen: "127.0.0.1:0", bodyTimeoutMs });
  const cp = await startControlPlane(herd, {
    listen: "127.0.0.1:0",
    dataPlaneUrl: dp.url,
    headerTimeoutMs: bodyTimeoutMs,
  });
  const budget = fdBudget();
  console.log(JSON.stringify({ port: dp.port, controlPort: cp.port, budget }));
  for await (const line of createInterface({ input: process.stdin })) {
    if (line === "fds") {
      console.log(
        JSON.stringify({
          fds: readdirSync("/proc/self/fd").length,
          open: dp.openConnections,
          controlOpen: cp.openConnections,
        }),
      );
    }
  }
  await cp.close();
  await dp.close();
  await herd.close();
}

// ---- the load generator ----

function get(port: number, session: string): Promise<{ status: number; ms: number }> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const s = connect(port, "127.0.0.1");
    let text = "";
    s.setEncoding("utf8");
    s.on("data", (d: string) => {
      text += d;
      if (/\r\n\r\n[\s\S]*\}/.test(text)) s.destroy();
    });
    s.on("error", () => s.destroy());
    s.on("close", () =>
      resolve({ status: Number(text.slice(9, 12)) || 0, ms: performance.now() - t0 }),
    );
    s.write(
      `GET /whoami HTTP/1.1\r\nHost: x\r\nX-Session-ID: ${session}\r\nConnection: close\r\n\r\n`,
    );
  });
}

/** Times of the answers that were 200, and how many were not. */
async function latencies(
  port: number,
  session: string,
  n: number,
): Promise<{ ms: number[]; failed: number }> {
  const ms: number[] = [];
  let failed = 0;
  for (let i = 0; i < n; i++) {
    const r = await get(port, session);
    if (r.status === 200) ms.push(r.ms);
    else failed++;
  }
  return { ms, failed };
}

interface Trickle {
  socket: Socket;
  text: string;
}

function openTrickle(port: number, localAddress: string): Promise<Trickle> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: "127.0.0.1", localAddress });
    const t: Trickle = { socket, text: "" };
    socket.setEncoding("utf8");
    socket.on("data", (d: string) => {
      t.text += d;
    });
    socket.on("error", () => socket.destroy());
    socket.once("connect", () => {
      socket.write(
        "POST /upload HTTP/1.1\r\nHost: x\r\nX-Session-ID: trickle\r\nContent-Length: 1000000\r\n\r\n",
      );
      resolve(t);
    });
    socket.once("close", () => resolve(t));
  });
}

interface Daemon {
  port: number;
  controlPort: number;
  budget: ReturnType<typeof fdBudget>;
  /** The daemon's open descriptors and connections right now. */
  sample(): Promise<{ fds: number; open: number; controlOpen: number }>;
  stop(): Promise<void>;
}

async function startDaemon(nofile: number, deadlineMs: number): Promise<Daemon> {
  const child = spawn(
    "bash",
    [
      "-c",
      `ulimit -n ${nofile} && exec "$0" --import tsx "$1" --serve --body-timeout ${deadlineMs}`,
      process.execPath,
      SELF,
    ],
    { stdio: ["pipe", "pipe", "inherit"] },
  );
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const nextLine = async () => JSON.parse((await lines.next()).value as string);
  const info = (await nextLine()) as Pick<Daemon, "port" | "controlPort" | "budget">;
  return {
    ...info,
    async sample() {
      child.stdin!.write("fds\n");
      return await nextLine();
    },
    async stop() {
      child.stdin!.end();
      await new Promise((r) => child.once("close", r));
    },
  };
}

/** Half the connections send only the HTTP/2 preface, half a partial HTTP/1.1 head. */
async function controlFlood(opts: AbuseBenchOptions): Promise<BenchRow[]> {
  const connections = opts.connections ?? 10_000;
  const nofile = opts.nofile ?? 4096;
  const deadlineMs = opts.bodyTimeoutMs ?? 5000;
  const daemon = await startDaemon(nofile, deadlineMs);
  const sockets: Socket[] = [];
  try {
    const health = async () => {
      const out: number[] = [];
      for (let i = 0; i < 20; i++) {
        const t0 = performance.now();
        const ok = await fetch(`http://127.0.0.1:${daemon.controlPort}/healthz`).then(
          (r) => r.status === 200,
          () => false,
        );
        if (ok) out.push(performance.now() - t0);
      }
      return out;
    };
    const before = await health();
    const t0 = performance.now();
    for (let i = 0; i < connections; i += 200) {
      const batch = Array.from(
        { length: Math.min(200, connections - i) },
        (_, j) =>
          new Promise<Socket>((resolve) => {
            const s = connect({
              port: daemon.controlPort,
              host: "127.0.0.1",
              localAddress: `127.0.0.${2 + ((i + j) % 20)}`,
            });
            s.on("error", () => s.destroy());
            s.resume();
            s.once("connect", () => {
              s.write(
                (i + j) % 2 === 0
                  ? "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
                  : "POST /herd.v1.HerdService/GetStats HTTP/1.1\r\nHost: x\r\n",
              );
              resolve(s);
            });
            s.once("close", () => resolve(s));
          }),
      );
      sockets.push(...(await Promise.all(batch)));
    }
    const openedMs = performance.now() - t0;
    let peak = await daemon.sample();
    const during = await health();
    const after = await daemon.sample();
    if (after.fds > peak.fds) peak = after;
    let closedMs = Number.NaN;
    while (performance.now() - t0 < openedMs + deadlineMs + 60_000) {
      if ((await daemon.sample()).controlOpen === 0) {
        closedMs = performance.now() - t0;
        break;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    const p = (xs: number[], q: number) => round(percentile(xs, q), 1);
    return [
      {
        name: `${connections} idle pre-auth connections: open at peak`,
        value: peak.controlOpen,
        unit: "conns",
        goal: `≤ cap ${daemon.budget.controlConnections}`,
      },
      compared("daemon descriptors at peak", peak.fds, "fds", nofile, "< the soft limit"),
      {
        name: "/healthz answered during flood",
        value: during.length,
        unit: "of 20",
        goal: "20 (connections beyond the cap are refused)",
      },
      compared("/healthz p50 during flood", p(during, 50), "ms", p(before, 50)),
      { name: "flood opened in", value: round(openedMs / 1000, 1), unit: "s" },
      compared(
        "the daemon closed every one after",
        round(closedMs / 1000, 1),
        "s",
        round((openedMs + deadlineMs) / 1000, 1),
        "≈ open time + header_timeout",
      ),
    ];
  } finally {
    for (const s of sockets) s.destroy();
    await daemon.stop();
  }
}

export async function benchAbuse(opts: AbuseBenchOptions = {}): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  for (const addresses of opts.addresses ?? [1, 20]) {
    const flood = await floodOnce({ ...opts, addresses: [addresses] });
    rows.push(...flood.map((r) => ({ ...r, name: `from ${addresses} address(es): ${r.name}` })));
  }
  const control = await controlFlood(opts);
  rows.push(...control.map((r) => ({ ...r, name: `control plane: ${r.name}` })));
  return rows;
}

async function floodOnce(opts: AbuseBenchOptions): Promise<BenchRow[]> {
  const connections = opts.connections ?? 10_000;
  const nofile = opts.nofile ?? 4096;
  const bodyTimeoutMs = opts.bodyTimeoutMs ?? 5000;
  const sources = Array.from({ length: opts.addresses?.[0] ?? 1 }, (_, i) => `127.0.0.${i + 2}`);
  const daemon = await startDaemon(nofile, bodyTimeoutMs);
  const { port, budget } = daemon;
  const trickles: Trickle[] = [];
  let drip: NodeJS.Timeout | undefined;
  try {
    await get(port, "steady");
    await get(port, "trickle");
    const before = await latencies(port, "steady", 50);

    const t0 = performance.now();
    for (let i = 0; i < connections; i += 200) {
      const batch = Array.from({ length: Math.min(200, connections - i) }, (_, j) =>
        openTrickle(port, sources[(i + j) % sources.length]!),
      );
      trickles.push(...(await Promise.all(batch)));
    }
    const openedMs = performance.now() - t0;
    drip = setInterval(() => {
      for (const t of trickles) if (t.socket.writable) t.socket.write("x");
    }, 1000);
    let peakFds = 0;
    const sampleFds = async () => {
      peakFds = Math.max(peakFds, (await daemon.sample()).fds);
    };
    await sampleFds();
    const during = await latencies(port, "steady", 50);
    await sampleFds();
    const fresh = await get(port, "fresh-during-flood");
    await sampleFds();
    const refused = trickles.filter((t) => t.text.startsWith("HTTP/1.1 503 ")).length;
    let cutMs = Number.NaN;
    while (performance.now() - t0 < bodyTimeoutMs + 60_000) {
      if (trickles.every((t) => t.socket.destroyed)) {
        cutMs = performance.now() - t0;
        break;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    const p = (xs: number[], q: number) => round(percentile(xs, q), 1);
    return [
      {
        name: "steady session: requests refused during flood",
        value: during.failed,
        unit: "of 50",
        goal: "0 from one address",
      },
      {
        name: `${connections} trickling connections refused with 503`,
        value: refused,
        unit: "conns",
        goal: `admitted ≤ data cap ${budget.dataConnections}`,
      },
      compared("daemon descriptors at peak", peakFds, "fds", nofile, "< the soft limit"),
      compared("steady session p50 during flood", p(during.ms, 50), "ms", p(before.ms, 50)),
      compared(
        "steady session p99 during flood",
        p(during.ms, 99),
        "ms",
        p(before.ms, 99),
        "< 2000 ms",
      ),
      {
        name: "new session (new worker) during flood",
        value: round(fresh.ms, 1),
        unit: `ms (HTTP ${fresh.status})`,
        goal: "200",
      },
      { name: "flood opened in", value: round(openedMs / 1000, 1), unit: "s" },
      compared(
        "every trickle cut after",
        round(cutMs / 1000, 1),
        "s",
        round(bodyTimeoutMs / 1000 + openedMs / 1000, 1),
        "≈ open time + body_timeout",
      ),
    ];
  } finally {
    clearInterval(drip);
    for (const t of trickles) t.socket.destroy();
    await daemon.stop();
  }
}

if (process.argv[1] === SELF) {
  const at = (name: string) => process.argv.indexOf(name);
  const num = (name: string) => (at(name) > 0 ? Number(process.argv[at(name) + 1]) : undefined);
  if (at("--serve") > 0) await serve(num("--body-timeout") ?? 5000);
  else
    console.log(
      formatTable(
        await benchAbuse({
          connections: num("--connections"),
          nofile: num("--nofile"),
          bodyTimeoutMs: num("--body-timeout"),
          addresses: num("--addresses") === undefined ? undefined : [num("--addresses")!],
        }),
      ),
    );
}
