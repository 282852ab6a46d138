// `herd restart` with a `network: egress` pool (issue 22): the session's worker (same host pid,
// same namespace and address) goes on being served by the new daemon, and goes on reaching what
// its pool's allowlist lets through and being refused the rest — its veth now filtered by the
// new daemon's nftables table, the old daemon's gone with it; its slot claim names its
// generation's reaper, never a daemon that leaves. A session made after the restart gets egress
// too. Once everything ended, nothing of the test is left: no table, claim, namespace or veth,
// no uid claim of a dead owner, no process. The outside world is test/egress/outside-world.ts's
// (a namespace of this test's own on 192.0.2.0/24 and an RFC 1918 address). And across a config
// change: a handed worker is filtered by the new config's lists of its pool from the restart on;
// one whose pool is no longer `egress` keeps the old daemon's filter (its table outlives that
// daemon) until it ends.

import { readFileSync, writeFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import {
  egressClaims,
  egressLeftovers,
  reaperOf,
  slotOfProcess,
  tableOf,
} from "../egress/egress-state.ts";
import { type OutsideWorld, startOutsideWorld } from "../egress/outside-world.ts";
import { spawnCaptured } from "../helpers/captured.ts";
import { type Daemon, HERD_BIN, startDaemon } from "../helpers/daemon.ts";
import { killAllWithTag, newLeakTag, pidAlive } from "../helpers/processes.ts";
import { ask, HOSTILE, type UidRange } from "../security/isolation-harness.ts";
import { daemonPids, rpc, stopEveryGeneration, until, workerPidOf } from "./restart-helpers.ts";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Uids in `range` whose claim names a process that is gone. */
function deadUidClaims([first, last]: UidRange): number[] {
  const dead: number[] = [];
  for (let uid = first; uid <= last; uid++) {
    try {
      const owner = Number(readFileSync(`/run/herd-uids/${uid}`, "utf8").split(" ")[0]);
      if (!pidAlive(owner)) dead.push(uid);
    } catch {}
  }
  return dead;
}

/** The pool: an RFC 1918 host of the outside world let through, a public one refused. */
function egressPool(env: Record<string, string>, range: UidRange, world: OutsideWorld) {
  return {
    cmd: ["node", HOSTILE],
    health_path: "/health",
    env,
    min: 1,
    max: 4,
    isolation: {
      user: "auto",
      uid_range: range.join("-"),
      network: "egress",
      filesystem: "private",
      egress: { allow: [`${world.rfc1918}/32`], deny: [`${world.internet2}/32`] },
    },
  };
}

/**
 * An outside world and a daemon with `pools` (by name: egressPool or a variant); at the end, once
 * every daemon of the test left, nothing of it is left: no process, no uid claim of a dead
 * owner, no table of `daemons`, no claim naming one of `owners`, no namespace or veth of `slots`.
 */
async function setup(
  pools: (
    env: Record<string, string>,
    range: UidRange,
    world: OutsideWorld,
  ) => Record<string, unknown>,
) {
  const world = await startOutsideWorld();
  const { tag, env } = newLeakTag();
  const first = 3_700_000 + Math.floor(Math.random() * 90_000) * 10;
  const range: UidRange = [first, first + 9];
  const daemons: number[] = [];
  const owners: number[] = [];
  const slots: number[] = [];
  let daemon: Daemon | undefined;
  cleanups.push(async () => {
    try {
      // One signal each (a second one makes a daemon stop at once, leaving its claims).
      await stopEveryGeneration(tag, daemon, range);
      expect(deadUidClaims(range), "uid claims of dead owners").toEqual([]);
      // (the kernel frees a namespace, and the veth in it, a moment after its last process left)
      await until("the test's egress state to go", () =>
        egressLeftovers(daemons, owners, slots).length === 0 ? true : undefined,
      ).catch(() => expect(egressLeftovers(daemons, owners, slots)).toEqual([]));
    } finally {
      killAllWithTag(tag);
      world.close();
    }
  });
  daemon = await startDaemon({
    config: { drain_timeout: "30s", workers: pools(env, range, world) },
    env,
  });
  const d = daemon;
  daemons.push(d.pid);
  const reaper = reaperOf(d.pid)!;
  expect(reaper).toBeDefined();
  owners.push(d.pid, reaper);
  /** What `session`'s worker (of `pool`) reaches of the outside world. */
  const reach = async (pool: string, session: string) => {
    const connect = async (host: string) =>
      (await ask(d, pool, session, `/connect?host=${encodeURIComponent(host)}&port=80`)).ok;
    return {
      allowed: await connect(world.rfc1918),
      internet: await connect(world.internet),
      denied: await connect(world.internet2),
      cgnat: await connect(world.cgnat),
    };
  };
  /** `herd restart`; resolves once the old daemon left, with the new one's pid. */
  const restart = async () => {
    const run = spawnCaptured(process.execPath, [HERD_BIN, "restart", "--addr", d.controlUrl]);
    const exit = await run.exited;
    expect({ code: exit.code, stderr: run.stderr() }).toEqual({ code: 0, stderr: "" });
    await until("the old daemon to leave", () => (pidAlive(d.pid) ? undefined : true));
    expect(daemonPids(tag)).toHaveLength(1);
    const successor = daemonPids(tag)[0]!;
    daemons.push(successor);
    owners.push(successor, reaperOf(successor)!);
    return successor;
  };
  /** The slot of `session`'s worker (host pid `pid`), remembered for the final check. */
  const slotOf = (pid: number) => {
    const slot = slotOfProcess(pid)!;
    expect(slot).toBeDefined();
    if (!slots.includes(slot)) slots.push(slot);
    return slot;
  };
  return { d, world, reaper, reach, restart, slotOf };
}

describe("herd restart with a network: egress pool", () => {
  it("keeps the worker's network and filter; new sessions get egress; nothing is left", async () => {
    const {
      d,
      reaper: oldReaper,
      reach,
      restart,
      slotOf,
    } = await setup((env, range, world) => ({
      eg: egressPool(env, range, world),
    }));
    const expected = { allowed: true, internet: true, denied: false, cgnat: false };

    expect(await reach("eg", "kept")).toEqual(expected);
    const before = await ask(d, "eg", "kept", "/id");
    const hostPid = await until<number>("the session's worker", () =>
      workerPidOf(d.controlUrl, "kept"),
    );
    const slot = slotOf(hostPid);
    // The slot's claim names what ends the worker (its generation's reaper), not the daemon.
    expect(egressClaims().get(slot)).toBe(oldReaper);
    expect(tableOf(d.pid)).toContain(slot);

    const successor = await restart();
    const newReaper = reaperOf(successor)!;

    // The same process, in the same namespace, served by the new daemon, filtered as before.
    expect(await workerPidOf(d.controlUrl, "kept")).toBe(hostPid);
    const after = await ask(d, "eg", "kept", "/id");
    expect({ pid: after.pid, addresses: after.addresses }).toEqual({
      pid: before.pid,
      addresses: before.addresses,
    });
    expect(slotOfProcess(hostPid)).toBe(slot);
    expect(await reach("eg", "kept")).toEqual(expected);
    // Its veth is in the new daemon's table; the old one's table left with it.
    expect(tableOf(successor)).toContain(slot);
    expect(tableOf(d.pid)).toBeUndefined();
    expect(egressClaims().get(slot)).toBe(oldReaper);
    expect(pidAlive(oldReaper)).toBe(true);

    // A session made after the restart gets egress too, in the new generation.
    expect(await reach("eg", "fresh")).toEqual(expected);
    const freshPid = await until("the new session's worker", () =>
      workerPidOf(d.controlUrl, "fresh"),
    );
    const freshSlot = slotOf(freshPid);
    expect(freshSlot).not.toBe(slot);
    expect(egressClaims().get(freshSlot)).toBe(newReaper);
    expect(tableOf(successor)).toContain(freshSlot);

    // The handed worker ends: its namespace, veth and claim go with it.
    await rpc(d.controlUrl, "ReleaseSession", { sessionId: "kept", kill: true });
    await until("the handed worker to end", () => (pidAlive(hostPid) ? undefined : true));
    await until("its egress state to go", () =>
      egressLeftovers([], [oldReaper], [slot]).length === 0 ? true : undefined,
    );
    expect(tableOf(successor)).not.toContain(slot);
  }, 240_000);

  it("applies the new config's allowlist to a handed worker; a pool no longer egress keeps the old one", async () => {
    const { d, reach, restart, slotOf } = await setup((env, range, world) => ({
      tightened: egressPool(env, range, world),
      privatised: egressPool(env, range, world),
    }));
    const before = { allowed: true, internet: true, denied: false, cgnat: false };
    expect(await reach("tightened", "t")).toEqual(before);
    expect(await reach("privatised", "p")).toEqual(before);
    const t = await until<number>("t's worker", () => workerPidOf(d.controlUrl, "t"));
    const p = await until<number>("p's worker", () => workerPidOf(d.controlUrl, "p"));
    const pSlot = slotOf(p);
    slotOf(t);
    // The new config: `tightened` has no `egress` lists any more (the RFC 1918 host refused, the
    // public one it denied reachable); `privatised` gives its new workers no route out.
    const doc = parse(readFileSync(d.configFile, "utf8"));
    delete doc.workers.tightened.isolation.egress;
    doc.workers.privatised.isolation.network = "private";
    delete doc.workers.privatised.isolation.egress;
    writeFileSync(d.configFile, stringify(doc));
    const successor = await restart();

    expect(await workerPidOf(d.controlUrl, "t")).toBe(t);
    expect(await reach("tightened", "t")).toEqual({ ...before, allowed: false, denied: true });
    // Still filtered by the old daemon's table, which stays while it holds that worker's veth.
    expect(await workerPidOf(d.controlUrl, "p")).toBe(p);
    expect(await reach("privatised", "p")).toEqual(before);
    expect(tableOf(d.pid)).toEqual([pSlot]);
    expect(tableOf(successor)).not.toContain(pSlot);
    // A new worker of that pool has no route out.
    expect(await reach("privatised", "p2")).toEqual({
      allowed: false,
      internet: false,
      denied: false,
      cgnat: false,
    });
    // Once that worker ends, the old table goes with its state.
    await rpc(d.controlUrl, "ReleaseSession", { sessionId: "p", kill: true });
    await until("the old daemon's table to go", () =>
      tableOf(d.pid) === undefined ? true : undefined,
    );
  }, 240_000);
});
