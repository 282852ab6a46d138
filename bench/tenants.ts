// Tenants benchmark: what a `tenants` section costs an AcquireSession. Two real `herd serve`
// daemons with the same reusing pool and an operator token, one with 100 tenants configured
// (each with a key, max_sessions and acquire_rate, so every acquire is counted and rated), one
// with none; the first is called with one tenant's key, the second with the operator's token.
// Rounds alternate between the two (the order rotating) so the machine's load moves both
// alike; the figure is the median over every sample. Goal: ≤ 1.1× the daemon without tenants.
//
// Standalone: `npx tsx bench/tenants.ts [--rounds N]`.
import { createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { HerdService } from "../gen/herd/v1/herd_pb.ts";
import { type Daemon, startDaemon } from "../test/helpers/daemon.ts";
import { expectNoLeaks, newLeakTag } from "../test/helpers/processes.ts";
import { type BenchRow, compared, formatTable, load1, median } from "./report.ts";

const TENANTS = 100;
const OPERATOR = "bench-operator-token-0123456789abcdef";
const keyOf = (k: number) => `bench-tenant-${String(k).padStart(3, "0")}-0123456789abcdef0123`;
const POOL = {
  cmd: ["node", "test/fixtures/worker.mjs"],
  health_path: "/health",
  min: 2,
  max: 4,
  reuse: true,
};

function client(daemon: Daemon, key: string) {
  const bearer: Interceptor = (next) => (req) => {
    req.header.set("authorization", `Bearer ${key}`);
    return next(req);
  };
  return createClient(
    HerdService,
    createConnectTransport({
      baseUrl: daemon.controlUrl,
      httpVersion: "1.1",
      interceptors: [bearer],
    }),
  );
}

/** Milliseconds per AcquireSession of a new id (each released before the next). */
async function samples(c: ReturnType<typeof client>, prefix: string, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await c.acquireSession({ pool: "w", sessionId: `${prefix}-${i}` });
    out.push(performance.now() - t);
    await c.releaseSession({ sessionId: `${prefix}-${i}` });
  }
  return out;
}

export async function benchTenants(opts: { rounds?: number } = {}): Promise<BenchRow[]> {
  const rounds = opts.rounds ?? 10;
  const leak = newLeakTag();
  const env: Record<string, string> = { ...leak.env, HERD_OP: OPERATOR };
  const tenants: Record<string, object> = {};
  for (let k = 0; k < TENANTS; k++) {
    env[`HERD_KEY_${k}`] = keyOf(k);
    tenants[`t${k}`] = { key_env: `HERD_KEY_${k}`, max_sessions: 50, acquire_rate: "100000/s" };
  }
  const base = { log: { level: "warn" }, control: { token_env: "HERD_OP" }, workers: { w: POOL } };
  let withTenants: Daemon | undefined;
  let without: Daemon | undefined;
  try {
    withTenants = await startDaemon({ config: { ...base, tenants }, env });
    without = await startDaemon({ config: base, env });
    const sides: [ReturnType<typeof client>, number[]][] = [
      [client(withTenants, keyOf(57)), []],
      [client(without, OPERATOR), []],
    ];
    for (const [c] of sides) await samples(c, "warm", 20);
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? sides : [...sides].reverse();
      for (const [c, into] of order) into.push(...(await samples(c, `r${round}`, 20)));
    }
    return [
      compared(
        `AcquireSession p50, ${TENANTS} tenants (vs none), load ${load1()}`,
        median(sides[0]![1]),
        "ms",
        median(sides[1]![1]),
        "≤ 1.1×",
      ),
    ];
  } finally {
    await withTenants?.stop();
    await without?.stop();
    await expectNoLeaks(leak.tag);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const i = process.argv.indexOf("--rounds");
  const rounds = i > 0 ? Number(process.argv[i + 1]) : undefined;
  console.log(formatTable(await benchTenants({ rounds })));
}
