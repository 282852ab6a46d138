// The cluster hop (issue 26): a data-plane request that reaches a node which does not own its
// session is forwarded to the owner. Measured against the same session reached through its
// owner, with a worker that is not the bottleneck (bench/c-worker, the data-plane bench's) and
// real processes: redis-server and three `herd serve` nodes (a and b run the worker's pool, c
// only another one: a node that forwards sessions of a pool it does not run), wrk with two
// threads on 50 keep-alive connections, one session (owned by node a). Systems: through a
// (the owner), through b and through c (the hop), and through the raw Node TCP relay
// (bench/tcp-relay.mjs) in front of a, the floor for any Node process in the path.
//
// Per system: req/s, p50 (and, from a 2 s run on one connection right after, the p50 of a
// request that queues behind no other), and each node's CPU per request (user + system, and
// user alone) and context switches per request, from /proc, a node's native tunnel relay
// (which moves a relay hop's bytes, src/dataplane/relay-hop.ts) counted with it: the owner's
// on the owner row;
// the non-owner's (or the relay's) and the owner's on the others. Every run gets the same
// warm-up right before it and a pause after it (see data-plane.ts, SETTLE_MS); the rounds
// interleave the systems, rotating their order, and each figure is the median over the
// rounds (the req/s ratio also as the median of each round's own ratio); the load average is
// printed per round.
//
// A/B: `--ab DIR` runs a second cluster from another tree (DIR: a copy of this repository
// with node_modules and dist/, e.g. the previous commit's) beside this one, interleaved with
// it, as "B". HERD_BENCH_NODE_OPTIONS is given to every node as NODE_OPTIONS (e.g.
// "--perf-basic-prof" for `perf record`); the nodes' pids are printed for that.
//
// Standalone: `npx tsx bench/cluster-hop.ts [--seconds N] [--rounds N] [--ab DIR]`.
import type { ChildProcess } from "node:child_process";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { startCluster, type TestCluster, workerPool } from "../test/cluster/cluster-harness.ts";
import type { Daemon } from "../test/helpers/daemon.ts";
import { cmdline, descendants } from "../test/helpers/processes.ts";
import { cWorker } from "./bench-tools.ts";
import { type ProcUsage, RELAY, startRelay, stopChild, usage } from "./data-plane.ts";
import { type BenchRow, compared, load1, median, round } from "./report.ts";
import { wrk } from "./wrk.ts";

const SESSION = "bench";
const CONNECTIONS = 50;
const THREADS = 2;
const WARMUP_SECONDS = 1;
const SETTLE_MS = 300;
/** Seconds of the one-connection run after each measured run. */
const ONE_SECONDS = 2;

export interface HopBenchOptions {
  seconds?: number;
  rounds?: number;
  /** Another tree whose cluster runs beside this one as "B". */
  ab?: string;
}

interface Run {
  rps: number;
  /** ms */
  p50: number;
  /** CPU per request of the owner (node a) and of the non-owner (node b), µs; of it user time. */
  ownerUs: number;
  nonOwnerUs: number;
  ownerUserUs: number;
  nonOwnerUserUs: number;
  /** Context switches per request of each. */
  ownerCs: number;
  nonOwnerCs: number;
  /** p50 with one connection (ms): a request's own latency, no queueing behind others. */
  p50One: number;
}

interface System {
  name: string;
  url: string;
  /** The owner's processes (the daemon, its native relay), and the non-owner's. */
  ownerPid: number[];
  nonOwnerPid: number[];
  runs: Run[];
}

/** A node's processes whose CPU is its: the daemon and its native tunnel relay, if it runs. */
function nodePids(pid: number): number[] {
  return [pid, ...descendants(pid).filter((p) => cmdline(p).includes("tunnel-relay"))];
}

/** The summed usage of `pids`. */
function usageOf(pids: number[]): ProcUsage {
  const sum = { user: 0, system: 0, switches: 0 };
  for (const u of pids.map(usage)) {
    sum.user += u.user;
    sum.system += u.system;
    sum.switches += u.switches;
  }
  return sum;
}

async function measure(s: System, seconds: number): Promise<Run> {
  const headers = { "X-Session-ID": SESSION };
  await wrk(`${s.url}/`, {
    seconds: WARMUP_SECONDS,
    connections: CONNECTIONS,
    threads: THREADS,
    headers,
  });
  await sleep(SETTLE_MS);
  const [o0, n0] = [usageOf(s.ownerPid), usageOf(s.nonOwnerPid)];
  const r = await wrk(`${s.url}/`, {
    seconds,
    connections: CONNECTIONS,
    threads: THREADS,
    headers,
  });
  const [o1, n1] = [usageOf(s.ownerPid), usageOf(s.nonOwnerPid)];
  if (r.errors > 0) throw new Error(`bench: ${s.name}: ${r.errors} errors`);
  await sleep(SETTLE_MS);
  const one = await wrk(`${s.url}/`, { seconds: ONE_SECONDS, connections: 1, threads: 1, headers });
  await sleep(SETTLE_MS);
  const per = (x: number) => (x * 1e6) / r.requests;
  return {
    rps: r.rps,
    p50: r.p50 / 1000,
    ownerUs: per(o1.user + o1.system - o0.user - o0.system),
    nonOwnerUs: per(n1.user + n1.system - n0.user - n0.system),
    ownerUserUs: per(o1.user - o0.user),
    nonOwnerUserUs: per(n1.user - n0.user),
    ownerCs: (o1.switches - o0.switches) / r.requests,
    nonOwnerCs: (n1.switches - n0.switches) / r.requests,
    p50One: one.p50 / 1000,
  };
}

/**
 * Nodes a and b running pool w, and c running only another pool (a node that forwards the
 * sessions of a pool it does not run), of the tree at `root` (default this one); the session
 * on node a.
 */
async function threeNodes(root?: string): Promise<TestCluster> {
  const nodeOptions = process.env.HERD_BENCH_NODE_OPTIONS;
  const pool = workerPool({ cmd: [cWorker()], max: 1, health_path: "/" });
  const cluster = await startCluster(
    ["a", "b", "c"].map((n) => ({
      node: `node-${n}`,
      pools: { [n === "c" ? "other" : "w"]: pool },
      ...(root && { command: [process.execPath, join(root, "bin", "herd")] }),
      ...(nodeOptions && { env: { NODE_OPTIONS: nodeOptions } }),
    })),
  );
  const [a] = cluster.nodes;
  const got = await cluster.client(a!).acquireSession({ pool: "w", sessionId: SESSION });
  if (got.session?.node !== "node-a") {
    await cluster.cleanup();
    throw new Error(`bench: session ${SESSION} went to ${got.session?.node}, not node-a`);
  }
  return cluster;
}

export async function benchHop(opts: HopBenchOptions = {}): Promise<BenchRow[]> {
  const seconds = opts.seconds ?? 4;
  const rounds = opts.rounds ?? 5;
  const clusters: TestCluster[] = [];
  let relay: ChildProcess | undefined;
  try {
    const trees: [string, string | undefined][] = [["", undefined]];
    if (opts.ab) trees.push(["B ", opts.ab]);
    const systems: System[] = [];
    for (const [prefix, root] of trees) {
      const c = await threeNodes(root);
      clusters.push(c);
      const [a, b, g] = c.nodes as [Daemon, Daemon, Daemon];
      process.stderr.write(
        `${prefix}owner node-a pid ${a.pid}, non-owners node-b pid ${b.pid}, node-c pid ${g.pid}\n`,
      );
      const pids = { ownerPid: nodePids(a.pid), nonOwnerPid: nodePids(b.pid) };
      systems.push({ name: `${prefix}owner`, url: a.dataUrl, ...pids, runs: [] });
      systems.push({ name: `${prefix}hop`, url: b.dataUrl, ...pids, runs: [] });
      systems.push({
        name: `${prefix}hop from a node without the pool`,
        url: g.dataUrl,
        ownerPid: pids.ownerPid,
        nonOwnerPid: nodePids(g.pid),
        runs: [],
      });
    }
    // The floor of a hop through any Node process: the raw Node TCP relay (bench/tcp-relay.mjs,
    // no HTTP at all) in front of the owner, reached with the owner's own session header.
    const [a] = clusters[0]!.nodes;
    const r = await startRelay([process.execPath, RELAY], a!.dataUrl);
    relay = r.child;
    systems.push({
      name: "relay",
      url: r.url,
      ownerPid: nodePids(a!.pid),
      nonOwnerPid: [r.child.pid!],
      runs: [],
    });
    const loads: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const order = systems.map((_, i) => systems[(i + r) % systems.length]!);
      for (const s of order) s.runs.push(await measure(s, seconds));
      loads.push(load1());
      process.stderr.write(
        `round ${r + 1}/${rounds}, load ${loads.at(-1)}:\n${systems
          .map((s) => {
            const x = s.runs.at(-1)!;
            return `  ${s.name}: ${Math.round(x.rps)} req/s, p50 ${x.p50.toFixed(2)} ms (1 connection: ${x.p50One.toFixed(3)}), µs/req (user) cs/req: owner ${x.ownerUs.toFixed(1)} (${x.ownerUserUs.toFixed(1)}) ${x.ownerCs.toFixed(2)}, non-owner ${x.nonOwnerUs.toFixed(1)} (${x.nonOwnerUserUs.toFixed(1)}) ${x.nonOwnerCs.toFixed(2)}`;
          })
          .join("\n")}\n`,
      );
    }
    const med = (s: System, k: keyof Run) => median(s.runs.map((x) => x[k]));
    const named = (name: string) => systems.find((s) => s.name === name)!;
    const rows: BenchRow[] = [];
    const cpuRows = (label: string, s: System, who: "owner" | "nonOwner"): BenchRow[] => [
      { name: `${label} CPU µs/req`, value: round(med(s, `${who}Us`), 1), unit: "µs" },
      { name: `${label} … of it user`, value: round(med(s, `${who}UserUs`), 1), unit: "µs" },
      { name: `${label} context switches/req`, value: round(med(s, `${who}Cs`), 2), unit: "cs" },
    ];
    const pairs: [string, System, System][] = [];
    for (const p of opts.ab ? ["", "B "] : [""]) {
      const owner = named(`${p}owner`);
      rows.push(
        { name: `${p}via the owner: req/s`, value: round(med(owner, "rps"), 0), unit: "req/s" },
        ...cpuRows(`${p}via the owner: owner`, owner, "owner"),
      );
      pairs.push([p, owner, named(`${p}hop`)]);
      pairs.push([
        `${p}from a node without the pool, `,
        owner,
        named(`${p}hop from a node without the pool`),
      ]);
    }
    for (const [p, owner, hop] of pairs) {
      rows.push(
        compared(
          `${p}hop: req/s (vs via the owner)`,
          med(hop, "rps"),
          "req/s",
          med(owner, "rps"),
          "≥ 0.7×",
        ),
        {
          name: `${p}hop: req/s ÷ via the owner, median of the rounds' own ratios`,
          value: round(median(hop.runs.map((x, i) => x.rps / owner.runs[i]!.rps)), 3),
          unit: "×",
        },
        compared(
          `${p}hop: p50, 50 connections (vs via the owner)`,
          med(hop, "p50"),
          "ms",
          med(owner, "p50"),
          "added ≤ 0.3 ms",
        ),
        compared(
          `${p}hop: p50, 1 connection (vs via the owner)`,
          med(hop, "p50One"),
          "ms",
          med(owner, "p50One"),
          "added ≤ 0.3 ms",
        ),
        ...cpuRows(`${p}hop: non-owner`, hop, "nonOwner"),
        ...cpuRows(`${p}hop: owner`, hop, "owner"),
      );
    }
    const relayed = named("relay");
    const owner = named("owner");
    rows.push(
      compared(
        "Node relay before the owner: req/s (vs via the owner)",
        med(relayed, "rps"),
        "req/s",
        med(owner, "rps"),
      ),
      compared(
        "Node relay before the owner: p50, 1 connection",
        med(relayed, "p50One"),
        "ms",
        med(owner, "p50One"),
      ),
      ...cpuRows("Node relay before the owner: relay", relayed, "nonOwner"),
      ...cpuRows("Node relay before the owner: owner", relayed, "owner"),
    );
    rows.push({
      name: `load average beside them (median of ${rounds} rounds × ${seconds} s; ${Math.min(...loads)}–${Math.max(...loads)})`,
      value: round(median(loads), 2),
      unit: "load1",
    });
    return rows;
  } finally {
    if (relay) await stopChild(relay);
    for (const c of clusters) await c.cleanup();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const at = (name: string) => process.argv.indexOf(name);
  const arg = (name: string) => (at(name) > 0 ? process.argv[at(name) + 1] : undefined);
  const seconds = arg("--seconds");
  const rounds = arg("--rounds");
  const ab = arg("--ab");
  const rows = await benchHop({
    ...(seconds !== undefined ? { seconds: Number(seconds) } : {}),
    ...(rounds !== undefined ? { rounds: Number(rounds) } : {}),
    ...(ab !== undefined ? { ab } : {}),
  });
  const { formatTable, withVerdict } = await import("./report.ts");
  console.log(formatTable(rows.map(withVerdict)));
}
