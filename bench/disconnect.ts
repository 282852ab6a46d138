// Disconnect benchmark: how long past `disconnect_grace` a gone client's worker tree lives.
// A WebSocket client of a data-plane session (release_on_disconnect: auto) is cut without a
// close frame, like a `kill -9`ed one; the clock runs until the worker and its 9 setsid'd
// grandchildren are gone, minus the grace. Baseline: the same tree reaped by a direct release
// (the kill's own cost, with no window and no data plane). Goal (issue 11): dead within
// disconnect_grace + 100 ms.
//
// Standalone: `npx tsx bench/disconnect.ts [--runs N]`.
import { fileURLToPath } from "node:url";
import WebSocket from "ws";
import { startDataPlane } from "../src/dataplane/index.ts";
import { Herd, resolvePoolOptions } from "../src/pool/index.ts";
import { pidAlive } from "../test/helpers/processes.ts";
import { WORKER_FIXTURE as WORKER } from "../test/helpers/worker.ts";
import { type BenchRow, compared, formatTable, median, percentile } from "./report.ts";

const GRACE_MS = 200;

async function spawnTree(address: string, pid: number): Promise<number[]> {
  const res = await fetch(`http://${address}/control/spawn?count=9&setsid=1`, { method: "POST" });
  return [pid, ...((await res.json()) as { pids: number[] }).pids];
}

async function gone(tree: number[]): Promise<void> {
  while (tree.some(pidAlive)) await new Promise((r) => setImmediate(r));
}

export async function benchDisconnect(opts: { runs?: number } = {}): Promise<BenchRow[]> {
  const runs = opts.runs ?? 20;
  const herd = await Herd.start([
    resolvePoolOptions({
      name: "bench",
      command: [process.execPath, WORKER],
      healthPath: "/health",
      min: 1,
      max: 2,
      reuse: false,
      disconnectGraceMs: GRACE_MS,
    }),
  ]);
  const dp = await startDataPlane(herd, { listen: "127.0.0.1:0" });
  const past: number[] = [];
  const direct: number[] = [];
  try {
    for (let i = 0; i < runs; i++) {
      const id = `gone-${i}`;
      const ws = new WebSocket(`${dp.url.replace("http:", "ws:")}/ws`, {
        headers: { "X-Session-ID": id },
      });
      await new Promise((ok, fail) => ws.once("message", ok).once("error", fail));
      const s = herd.lookup(id)!;
      const tree = await spawnTree(s.workerAddress, s.workerPid);
      const cut = performance.now();
      ws.terminate();
      await gone(tree);
      past.push(performance.now() - cut - GRACE_MS);

      const r = await herd.acquire("bench", `direct-${i}`, { waitMs: 30_000 });
      const rTree = await spawnTree(r.workerAddress, r.workerPid);
      const released = performance.now();
      await herd.release(r.id);
      await gone(rTree);
      direct.push(performance.now() - released);
    }
  } finally {
    await dp.close();
    await herd.close();
  }
  return [
    compared("client gone → tree dead, past the grace, p50", median(past), "ms", median(direct)),
    compared(
      "client gone → tree dead, past the grace, p99",
      percentile(past, 99),
      "ms",
      percentile(direct, 99),
      "≤ 100 ms",
    ),
  ];
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const i = process.argv.indexOf("--runs");
  const runs = i > 0 ? Number(process.argv[i + 1]) : undefined;
  console.log(formatTable(await benchDisconnect(runs ? { runs } : {})));
}
