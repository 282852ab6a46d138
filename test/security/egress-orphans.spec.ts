// A daemon killed with SIGKILL cannot remove its `network: egress` table, its workers' network
// namespaces or their slot claims; the next daemon on the host that starts an egress pool does
// (egress/egress-host.ts), and leaves nothing of its own when it stops.

import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { afterAll, expect, it } from "vitest";
import { reaperOf, slotsOf } from "../egress/egress-state.ts";
import {
  type Daemon,
  expectNoLeaks,
  killAllWithTag,
  newLeakTag,
  startDaemon,
} from "../helpers/index.ts";
import {
  expectNoIsolationLeaks,
  hostilePool,
  processesInUidRange,
  type UidRange,
  uidRangeKey,
} from "./isolation-harness.ts";

const leak = newLeakTag();
const UID_RANGE: UidRange = [233_000, 233_999];
const config = {
  workers: {
    eg: {
      ...hostilePool(leak.env, {
        user: "auto",
        uid_range: uidRangeKey(UID_RANGE),
        network: "egress",
      }),
      min: 2,
    },
  },
};
const daemons: Daemon[] = [];

afterAll(async () => {
  for (const d of daemons) await d.stop();
  killAllWithTag(leak.tag);
}, 60_000);

/**
 * Slots claimed for daemon `pid`'s workers (in the name of its generation's reaper, or its own),
 * and whether each one's namespace is still there.
 */
function claims(pid: number, reaper: number): { slot: string; netns: boolean }[] {
  return slotsOf([pid, reaper]).map((slot) => ({
    slot: String(slot),
    netns: existsSync(`/run/netns/herdeg${slot}`),
  }));
}

const tables = () => execFileSync("nft", ["list", "tables", "inet"]).toString();

async function until(what: string, cond: () => boolean): Promise<void> {
  for (let waited = 0; !cond(); waited += 100) {
    if (waited > 60_000) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

it("the next daemon removes what a SIGKILLed one left", async () => {
  const first = await startDaemon({ config, env: leak.env });
  daemons.push(first);
  const firstReaper = reaperOf(first.pid) ?? first.pid;
  // min: 2, plus the spare the pool prepares.
  await until("prepared workers", () => claims(first.pid, firstReaper).length >= 2);
  await first.kill();
  await until(
    "the workers to die with their daemon",
    () => processesInUidRange(UID_RANGE).length === 0,
  );
  // What the kill left behind. Any herd starting on this host meanwhile (other specs run at
  // once) may sweep it first — that is the same sweep, by another daemon —, so the leftovers are
  // read as they are; what matters is that none outlives the next daemon's start.
  const left = claims(first.pid, firstReaper);
  expect(left.every((c) => c.netns)).toBe(true);

  const second = await startDaemon({ config, env: leak.env });
  daemons.push(second);
  const secondReaper = reaperOf(second.pid) ?? second.pid;
  expect(claims(first.pid, firstReaper)).toEqual([]);
  for (const { slot } of left) expect(existsSync(`/run/netns/herdeg${slot}`)).toBe(false);
  expect(tables()).not.toContain(`herd-egress-${first.pid}\n`);
  await until("the second daemon's workers", () => claims(second.pid, secondReaper).length >= 2);
  const exit = await second.stop();
  expect(exit).toEqual({ code: 0, signal: null });
  expect(claims(second.pid, secondReaper)).toEqual([]);
  expect(tables()).not.toContain(`herd-egress-${second.pid}\n`);
  await expectNoLeaks(leak.tag);
  await expectNoIsolationLeaks(UID_RANGE, second.pid);
}, 180_000);
