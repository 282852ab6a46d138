// `npm run bench [-- [--quick] [runtime pool acquire spike data-plane control-plane disconnect abuse cluster output-flood demand fair-share tenants tracing restart sandbox-relay contained-tunnel]]`: runs the benchmark
// suites (all by default), prints each suite's table of medians and ratios against baselines
// measured in the same run, then one table of every goal with whether this run met it.
// `--quick` shortens every suite (fewer rounds and runs, 100 sessions instead of 1000) so the
// whole run takes a few minutes. Run it on a quiet machine: the load average is printed beside
// the data-plane figures because every figure here is noise-sensitive by nature.

import { type BenchRow, formatTable, load1, withVerdict } from "./report.ts";

type Suite = (quick: boolean) => Promise<BenchRow[]>;

const suites: Record<string, Suite> = {
  runtime: async (quick) => (await import("./runtime.ts")).benchRuntime({ quick }),
  pool: async (quick) => (await import("./pool.ts")).benchPool({ runs: quick ? 10 : 30 }),
  acquire: async (quick) =>
    (await import("./acquire.ts")).benchAcquire(quick ? { rounds: 2, calls: 100 } : {}),
  spike: async (quick) => (await import("./spike.ts")).benchSpike({ rounds: quick ? 2 : 5 }),
  "data-plane": async (quick) =>
    (await import("./data-plane.ts")).benchDataPlane(
      quick ? { seconds: 2, rounds: 3 } : { seconds: 5, rounds: 5 },
    ),
  "control-plane": async (quick) =>
    (await import("./control-plane.ts")).benchControlPlane({ calls: quick ? 500 : 3000 }),
  disconnect: async (quick) =>
    (await import("./disconnect.ts")).benchDisconnect({ runs: quick ? 10 : 20 }),
  abuse: async () => (await import("./abuse.ts")).benchAbuse(),
  cluster: async () => (await import("./cluster.ts")).benchCluster(),
  "output-flood": async (quick) =>
    (await import("./output-flood.ts")).benchOutputFlood({ seconds: quick ? 5 : 10 }),
  demand: async (quick) => (await import("./demand.ts")).benchDemand({ quick }),
  "fair-share": async (quick) => (await import("./fair-share.ts")).benchFairShare({ quick }),
  tenants: async (quick) => (await import("./tenants.ts")).benchTenants(quick ? { rounds: 4 } : {}),
  tracing: async (quick) =>
    (await import("./tracing.ts")).benchTracing(
      quick ? { seconds: 2, rounds: 3 } : { seconds: 5, rounds: 5 },
    ),
  restart: async (quick) => (await import("./restart.ts")).benchRestart({ runs: quick ? 2 : 5 }),
  "sandbox-relay": async (quick) =>
    (await import("./sandbox-relay.ts")).benchSandboxRelay(
      quick ? { seconds: 1, rounds: 2 } : { seconds: 3, rounds: 5 },
    ),
  "contained-tunnel": async (quick) =>
    (await import("./contained-tunnel.ts")).benchContainedTunnel(
      quick ? { seconds: 1, rounds: 2 } : {},
    ),
};

const quick = process.argv.includes("--quick");
const wanted = process.argv.slice(2).filter((a) => !a.startsWith("-"));
const unknown = wanted.filter((w) => !(w in suites));
if (unknown.length > 0) {
  console.error(
    `unknown benchmark suite(s): ${unknown.join(", ")}; choose from ${Object.keys(suites).join(", ")}`,
  );
  process.exit(2);
}
const rows: BenchRow[] = [];
for (const name of wanted.length > 0 ? wanted : Object.keys(suites)) {
  process.stderr.write(`running ${name}${quick ? " (quick)" : ""}, load ${load1()}...\n`);
  const suiteRows = (await suites[name]!(quick)).map((r) =>
    withVerdict({ ...r, name: `${name}: ${r.name}` }),
  );
  console.log(`\n${formatTable(suiteRows)}`);
  rows.push(...suiteRows);
}
const goals = rows.filter((r) => r.goal !== undefined);
const met = goals.filter((r) => r.met).length;
console.log(`\ngoals (issue 13 and earlier): ${met} of ${goals.length} met, load now ${load1()}`);
console.log(formatTable(goals));
