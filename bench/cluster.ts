// Cluster benchmark: real redis-server and real `herd serve` daemons (separate processes, so
// the load generator never shares a thread with a node). Ratios in one run:
//   - data plane through a non-owner node ÷ through the owner (added p50, throughput, each
//     node's CPU per request): bench/cluster-hop.ts, with its own three nodes and the C worker;
//   - AcquireSession p50 in a 3-node cluster ÷ a single node (same pool, reused workers),
//     in interleaved rounds;
//   - 3 nodes of max N serve 3N concurrent sessions (one acquire node, placement spreads);
//   - failover: kill -9 of a node → its sessions reported lost (node_lost) on a survivor;
//   - Redis memory per session key.
//
// Standalone: `npx tsx bench/cluster.ts [--seconds N]`.
import { setTimeout as sleep } from "node:timers/promises";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { createClient as redisClient } from "redis";
import { HerdService, SessionEventType } from "../gen/herd/v1/herd_pb.ts";
import { startCluster, type TestCluster, workerPool } from "../test/cluster/cluster-harness.ts";
import { startDaemon } from "../test/helpers/daemon.ts";
import { expectNoLeaks, newLeakTag } from "../test/helpers/processes.ts";
import { benchHop } from "./cluster-hop.ts";
import { type BenchRow, compared, formatTable, median, round } from "./report.ts";

const N = 4;

/** Milliseconds per AcquireSession of a new id (each released before the next). */
async function acquireSamples(
  client: ReturnType<typeof createClient<typeof HerdService>>,
  prefix: string,
  n: number,
): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await client.acquireSession({ pool: "w", sessionId: `${prefix}-${i}` });
    samples.push(performance.now() - t);
    await client.releaseSession({ sessionId: `${prefix}-${i}` });
  }
  return samples;
}

export async function benchCluster(opts: { seconds?: number } = {}): Promise<BenchRow[]> {
  const seconds = opts.seconds ?? 3;
  const rows: BenchRow[] = await benchHop({ seconds, rounds: 3 });
  let cluster: TestCluster | undefined;
  try {
    cluster = await startCluster(
      ["a", "b", "c"].map((n) => ({
        node: `node-${n}`,
        lease: "2s",
        pools: { w: workerPool({ max: N, reuse: true }) },
      })),
    );
    const c = cluster;
    const [a, b, cc] = c.nodes as [(typeof c.nodes)[0], (typeof c.nodes)[0], (typeof c.nodes)[0]];

    // 2. AcquireSession p50: cluster vs a single node with the same pool, in interleaved
    // rounds (the machine's load moves during a run; both sides see the same).
    const leak = newLeakTag();
    const single = await startDaemon({
      config: { log: { level: "warn" }, workers: { w: workerPool({ max: N, reuse: true }) } },
      env: leak.env,
    });
    try {
      const client = createClient(
        HerdService,
        createConnectTransport({ baseUrl: single.controlUrl, httpVersion: "1.1" }),
      );
      const inCluster: number[] = [];
      const onSingle: number[] = [];
      await acquireSamples(c.client(a), "warm", 5);
      await acquireSamples(client, "warm", 5);
      for (let round = 0; round < 5; round++) {
        inCluster.push(...(await acquireSamples(c.client(a), `acq-${round}`, 20)));
        onSingle.push(...(await acquireSamples(client, `acq-${round}`, 20)));
      }
      rows.push(
        compared(
          "AcquireSession p50, 3-node cluster (vs single node)",
          median(inCluster),
          "ms",
          median(onSingle),
          "≤ 2×",
        ),
      );
    } finally {
      await single.stop();
      await expectNoLeaks(leak.tag);
    }

    // 3. Capacity: 3N concurrent sessions, all acquired through one node.
    const ids = Array.from({ length: 3 * N }, (_, i) => `cap-${i}`);
    const got = await Promise.all(
      ids.map((id) =>
        c.client(a).acquireSession({ pool: "w", sessionId: id, wait: { seconds: 30n, nanos: 0 } }),
      ),
    );
    const served = await Promise.all(
      ids.map(async (id) => {
        const res = await fetch(`${b.dataUrl}/whoami`, { headers: { "X-Session-ID": id } });
        return { ok: res.ok, pid: ((await res.json()) as { pid: number }).pid };
      }),
    );
    const perNode = ["node-a", "node-b", "node-c"].map(
      (n) => got.filter((g) => g.session!.node === n).length,
    );
    process.stderr.write(`sessions per node: ${perNode.join(" / ")}\n`);
    const pids = new Set(served.filter((s) => s.ok).map((s) => s.pid));
    rows.push(
      compared(`concurrent sessions served by 3 nodes of max ${N}`, pids.size, "sessions", N, "3×"),
    );

    // Redis memory per session key.
    const r = redisClient({ url: c.redis.url });
    await r.connect();
    const sizes = await Promise.all(ids.map((id) => r.memoryUsage(`herd:s:${id}`)));
    r.destroy();
    rows.push({
      name: "Redis bytes per session key (MEMORY USAGE)",
      value: round(median(sizes.map(Number)), 0),
      unit: "B",
    });

    // 4. Failover: kill -9 node c; time until b reports its sessions lost.
    const onC = got.filter((g) => g.session!.node === "node-c").map((g) => g.session!.sessionId);
    const watch = new AbortController();
    const lost = new Set<string>();
    let allLostAt = 0;
    const watching = (async () => {
      for await (const e of c.client(b).watchSessions({}, { signal: watch.signal })) {
        if (e.type === SessionEventType.SESSION_LOST && e.reason === "node_lost") {
          lost.add(e.sessionId);
          if (onC.every((id) => lost.has(id))) allLostAt = Date.now();
        }
      }
    })().catch(() => {});
    await sleep(300);
    const killed = Date.now();
    await cc.kill();
    while (allLostAt === 0 && Date.now() - killed < 30_000) await sleep(10);
    watch.abort();
    await watching;
    rows.push(
      compared(
        `failover: kill -9 → ${onC.length} sessions reported lost (lease 2 s)`,
        allLostAt - killed,
        "ms",
        4000,
        "≤ 2 × lease",
      ),
    );
  } finally {
    await cluster?.cleanup();
  }
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const i = process.argv.indexOf("--seconds");
  const seconds = i > 0 ? Number(process.argv[i + 1]) : undefined;
  console.log(formatTable(await benchCluster({ seconds })));
}
