// The sweep of what dead daemons left (real nftables, real claim files under CLAIMS): a dead
// daemon's table that still filters the veth of a slot whose claim names a live process — a
// restart's handed worker whose successor has not moved it into its own table yet — is kept;
// once that claim is gone, the sweep removes the table; and a daemon whose pid named such a
// table (a pid reused) refuses to start its egress pools rather than replace it. Names are unique per run (a pid that has
// just exited, a free slot), since other daemons share the host.

import { execFileSync, spawnSync } from "node:child_process";
import { randomInt } from "node:crypto";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { CLAIMS, egressProblem, sweepEgressOrphans } from "./egress-host.ts";
import { addWorker, tableName, tableRuleset, WORKER_SLOTS } from "./egress-ruleset.ts";
import { PoolEgress } from "./pool-egress.ts";

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

const tables = () => execFileSync("nft", ["list", "tables", "inet"]).toString();

/** A slot nobody claims, claimed here in the name of `owner`. */
function claimFreeSlot(owner: number): number {
  mkdirSync(CLAIMS, { recursive: true, mode: 0o700 });
  for (;;) {
    const slot = randomInt(WORKER_SLOTS);
    try {
      writeFileSync(join(CLAIMS, String(slot)), `${owner}\n`, { flag: "wx" });
      cleanups.push(() => rmSync(join(CLAIMS, String(slot)), { force: true }));
      return slot;
    } catch {}
  }
}

describe.skipIf(egressProblem() !== undefined)("the egress sweep", () => {
  it("keeps a dead daemon's table while it filters a live claim's veth, then removes it", () => {
    const dead = spawnSync("true").pid!;
    const table = tableName(dead);
    const slot = claimFreeSlot(process.pid);
    cleanups.push(() => {
      try {
        execFileSync("nft", ["delete", "table", "inet", table], { stdio: "ignore" });
      } catch {}
    });
    execFileSync("nft", ["-f", "-"], {
      input: `${tableRuleset(dead, false)}add chain inet ${table} p0\n${addWorker(dead, 0, `herdeg${slot}`)}`,
    });
    sweepEgressOrphans();
    expect(tables()).toContain(`table inet ${table}\n`);
    rmSync(join(CLAIMS, String(slot)));
    sweepEgressOrphans();
    expect(tables()).not.toContain(`table inet ${table}\n`);
  });

  it("refuses to replace a table of a former daemon with its pid while it filters a live worker", () => {
    const table = tableName(process.pid);
    const slot = claimFreeSlot(process.pid);
    cleanups.push(() => {
      try {
        execFileSync("nft", ["delete", "table", "inet", table], { stdio: "ignore" });
      } catch {}
    });
    execFileSync("nft", ["-f", "-"], {
      input: `${tableRuleset(process.pid, false)}add chain inet ${table} p0\n${addWorker(process.pid, 0, `herdeg${slot}`)}`,
    });
    expect(() => new PoolEgress("w", { allow: [], deny: [] })).toThrow(
      /left by a former daemon with this pid, still filters live workers/,
    );
    expect(tables()).toContain(`table inet ${table}\n`);
  });
});
