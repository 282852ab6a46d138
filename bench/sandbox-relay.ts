// What the relay into a worker's private network costs per request: the same C worker
// (bench/c-worker) on the host's network ("none"), contained behind herd's native relay
// ("native", the default where it was built) and behind socat ("socat", the fallback), driven
// straight at the worker's endpoint (its TCP port, or the relay's Unix socket) by a load loop in
// this process, so what differs between the sides is the relay alone:
//   keep-alive       50 connections, one request in flight on each;
//   new connection   8 at a time, each carrying one request and closed after its answer.
// Per side: requests per second and the CPU of the worker's whole process tree per request
// (/proc: user + system of each live process, plus what each reaped of its exited children,
// such as socat's forks), and that minus the "none" side's: the relay's own cost. Rounds
// interleave the sides (rotating their order); figures are medians; the load average is beside.
//
// Standalone (root, bubblewrap; socat for its side): `node --import tsx bench/sandbox-relay.ts
// [--seconds N] [--rounds N]`.

import { readdirSync, readFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { fileURLToPath } from "node:url";
import { workerEndpoint } from "../src/core/index.ts";
import { Herd, resolvePoolOptions } from "../src/pool/index.ts";
import { sandboxLauncher } from "../src/sandbox/index.ts";
import { cWorker } from "./bench-tools.ts";
import { type BenchRow, compared, formatTable, load1, median, round } from "./report.ts";

const SIDES = ["none", "native", "socat"] as const;
type Side = (typeof SIDES)[number];
const REQUEST = Buffer.from("GET /whoami HTTP/1.1\r\nHost: bench\r\n\r\n");
const CONTAINED = { user: "auto", network: "private", filesystem: "private" } as const;
/** `isolation: none` in herd.yaml. */
const NONE = { user: "inherit", network: "host", filesystem: "host" } as const;
const TICKS_PER_SECOND = 100;

/** CPU seconds of `root`'s tree: each live process's own and its reaped children's. */
export function treeCpu(root: number): number {
  const parent = new Map<number, number>();
  const ticks = new Map<number, number>();
  for (const name of readdirSync("/proc")) {
    const pid = Number(name);
    if (!Number.isInteger(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      parent.set(pid, Number(f[1]));
      ticks.set(pid, Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]));
    } catch {} // gone meanwhile
  }
  let sum = 0;
  for (const [pid, t] of ticks) {
    for (let p: number | undefined = pid; p !== undefined && p > 1; p = parent.get(p)) {
      if (p === root) {
        sum += t;
        break;
      }
    }
  }
  return sum / TICKS_PER_SECOND;
}

type Endpoint = { path: string } | { host: string; port: number };

/** Connects refused with EAGAIN (a Unix socket's listen backlog full: socat listens with 5). */
const refused: Record<string, number> = {};

/** A connected socket to `to`; a connect refused with EAGAIN is counted and tried again. */
function connected(to: Endpoint): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(to);
    s.once("connect", () => {
      s.removeAllListeners("error");
      resolve(s);
    });
    s.once("error", (err: NodeJS.ErrnoException) => {
      if (err.code !== "EAGAIN" || !("path" in to)) return reject(err);
      refused[to.path] = (refused[to.path] ?? 0) + 1;
      setImmediate(() => connected(to).then(resolve, reject));
    });
  });
}

/** Requests answered in `ms` over `connections` keep-alive connections. */
async function keepAlive(to: Endpoint, connections: number, ms: number): Promise<number> {
  let answered = 0;
  const until = performance.now() + ms;
  const sockets: Socket[] = [];
  await Promise.all(
    Array.from({ length: connections }, async () => {
      const s = await connected(to);
      sockets.push(s);
      s.setNoDelay(true);
      await new Promise<void>((resolve, reject) => {
        s.on("error", reject);
        // One answer per read: the worker's fixed answer comes in one segment.
        s.on("data", () => {
          answered++;
          if (performance.now() < until) s.write(REQUEST);
          else resolve();
        });
        s.write(REQUEST);
      });
    }),
  );
  for (const s of sockets) s.destroy();
  return answered;
}

/** Requests answered in `ms`, each on a new connection, `parallel` at a time. */
async function freshConnections(to: Endpoint, parallel: number, ms: number): Promise<number> {
  let answered = 0;
  const until = performance.now() + ms;
  const one = async (): Promise<void> => {
    const s = await connected(to);
    await new Promise<void>((resolve, reject) => {
      s.on("error", reject);
      s.once("data", () => {
        answered++;
        s.destroy();
        resolve();
      });
      s.write(REQUEST);
    });
  };
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (performance.now() < until) await one();
    }),
  );
  return answered;
}

interface Sample {
  rps: number;
  cpuUs: number;
}

export async function benchSandboxRelay({ seconds = 3, rounds = 5 } = {}): Promise<BenchRow[]> {
  const pool = (name: Side) =>
    resolvePoolOptions({
      name,
      command: [cWorker()],
      min: 0,
      max: 1,
      ready: { kind: "stdout", pattern: "^ready" },
      isolation: name === "none" ? NONE : CONTAINED,
    });
  const herds = [
    await Herd.start([pool("none"), pool("native")], { sandbox: sandboxLauncher() }),
    await Herd.start([pool("socat")], { sandbox: sandboxLauncher({ relay: "socat" }) }),
  ];
  const loads: number[] = [];
  const workers = {} as Record<Side, { to: Endpoint; pid: number }>;
  const results: Record<string, Record<Side, Sample[]>> = {};
  try {
    for (const side of SIDES) {
      const herd = side === "socat" ? herds[1]! : herds[0]!;
      const s = await herd.acquire(side, `relay-${side}`);
      const e = workerEndpoint(s.workerAddress);
      workers[side] = { to: "socketPath" in e ? { path: e.socketPath } : e, pid: s.workerPid };
    }
    const modes = {
      "keep-alive": (to: Endpoint, ms: number) => keepAlive(to, 50, ms),
      "new connection": (to: Endpoint, ms: number) => freshConnections(to, 8, ms),
    };
    for (const [mode, run] of Object.entries(modes)) {
      results[mode] = { none: [], native: [], socat: [] };
      for (let r = 0; r < rounds; r++) {
        loads.push(load1());
        for (let k = 0; k < SIDES.length; k++) {
          const side = SIDES[(k + r) % SIDES.length]!;
          const { to, pid } = workers[side];
          await run(to, 300); // warm-up
          const cpu = treeCpu(pid);
          const n = await run(to, seconds * 1_000);
          const used = treeCpu(pid) - cpu;
          results[mode]![side].push({ rps: n / seconds, cpuUs: (used / n) * 1e6 });
        }
      }
    }
  } finally {
    await Promise.all(herds.map((h) => h.close()));
  }
  const rows: BenchRow[] = [];
  for (const [mode, bySide] of Object.entries(results)) {
    const cpu = (side: Side) => median(bySide[side].map((s) => s.cpuUs));
    const rps = (side: Side) => median(bySide[side].map((s) => s.rps));
    for (const side of SIDES) {
      rows.push({ name: `${mode}: ${side}, req/s`, value: round(rps(side), 0), unit: "req/s" });
      rows.push({
        name: `${mode}: ${side}, worker tree CPU per request`,
        value: round(cpu(side), 1),
        unit: "µs/req",
      });
    }
    for (const side of ["native", "socat"] as const) {
      rows.push({
        name: `${mode}: the ${side} relay's own CPU per request`,
        value: round(cpu(side) - cpu("none"), 1),
        unit: "µs/req",
      });
    }
    rows.push(
      compared(`${mode}: req/s native vs socat`, rps("native"), "req/s", rps("socat")),
      compared(
        `${mode}: relay CPU/req native vs socat`,
        cpu("native") - cpu("none"),
        "µs/req",
        cpu("socat") - cpu("none"),
      ),
    );
  }
  for (const side of SIDES) {
    const to = workers[side]?.to;
    rows.push({
      name: `new connection: ${side}, connects refused (EAGAIN, backlog full)`,
      value: to && "path" in to ? (refused[to.path] ?? 0) : 0,
      unit: "connects",
    });
  }
  rows.push({
    name: "load average (1 min), median over rounds",
    value: median(loads),
    unit: "load1",
  });
  return rows;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const arg = (name: string, fallback: number) => {
    const i = process.argv.indexOf(name);
    return i >= 0 ? Number(process.argv[i + 1]) : fallback;
  };
  benchSandboxRelay({ seconds: arg("--seconds", 3), rounds: arg("--rounds", 5) }).then(
    (rows) => {
      console.log(formatTable(rows));
      process.exit(0);
    },
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
