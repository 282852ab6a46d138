// `npm run bench [-- pool data-plane control-plane]`: runs the benchmark suites (all by
// default) and prints one table of medians and ratios against baselines measured in the same
// run. Run it on a quiet machine; every figure here is noise-sensitive by nature.

import { type BenchRow, formatTable } from "./report.ts";

type Suite = () => Promise<BenchRow[]>;

const suites: Record<string, Suite> = {
  pool: async () => (await import("./pool.ts")).benchPool(),
  "data-plane": async () => (await import("./data-plane.ts")).benchDataPlane(),
  "control-plane": async () => (await import("./control-plane.ts")).benchControlPlane(),
  cluster: async () => (await import("./cluster.ts")).benchCluster(),
};

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
  process.stderr.write(`running ${name}...\n`);
  rows.push(...(await suites[name]!()).map((r) => ({ ...r, name: `${name}: ${r.name}` })));
}
console.log(formatTable(rows));
