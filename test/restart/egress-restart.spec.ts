// `herd restart` with a `network: egress` pool (issue 22): the session's worker (same host pid,
// same namespace and address) goes on being served by the new daemon, and goes on reaching what
// its pool's allowlist lets through and being refused the rest — its veth now filtered by the
// new daemon's nftables table, the old daemon's gone with it; its slot claim names its
// generation's reaper, never a daemon that leaves. A session made after the restart gets egress
// too. Once everything ended, nothing of the test is left: no table, claim, namespace or veth,
// no uid claim of a dead owner, no process. The outside world is test/egress/outside-world.ts's
// (a namespace of this test's own on 192.0.2.0/24 and an RFC 1918 address).

import { readFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
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
import { expectNoLeaks, killAllWithTag, newLeakTag, pidAlive } from "../helpers/processes.ts";
import {
  type Answer,
  ask,
  HOSTILE,
  processesInUidRange,
  type UidRange,
} from "../security/isolation-harness.ts";
import { daemonPids, until } from "./restart-helpers.ts";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function rpc(controlUrl: string, method: string, body: unknown): Promise<unknown> {
  const res = await fetch(`${controlUrl}/herd.v1.HerdService/${method}`, {
    method: "POST",
    headers: { "content-type": "application/json", connection: "close" },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`${method}: ${res.status} ${await res.text()}`);
  return res.json();
}

async function workerPidOf(controlUrl: string, id: string): Promise<number | undefined> {
  const { sessions } = (await rpc(controlUrl, "ListSessions", {})) as {
    sessions?: { sessionId?: string; workerPid?: number }[];
  };
  return sessions?.find((s) => s.sessionId === id)?.workerPid;
}

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

describe("herd restart with a network: egress pool", () => {
  it("keeps the worker's network and filter; new sessions get egress; nothing is left", async () => {
    const world: OutsideWorld = await startOutsideWorld();
    const { tag, env } = newLeakTag();
    const first = 3_700_000 + Math.floor(Math.random() * 90_000) * 10;
    const range: UidRange = [first, first + 9];
    // Everything of the test's whose egress state must be gone at the end.
    const daemons: number[] = [];
    const owners: number[] = [];
    const slots: number[] = [];
    let daemon: Daemon | undefined;
    cleanups.push(async () => {
      try {
        // One signal each (a second one makes a daemon stop at once, leaving its claims).
        for (const pid of daemonPids(tag)) {
          if (pid === daemon?.pid) continue;
          try {
            process.kill(pid, "SIGINT");
          } catch {}
        }
        await daemon?.stop();
        await until("every daemon of the test to leave", () =>
          daemonPids(tag).length === 0 ? true : undefined,
        );
        await expectNoLeaks(tag);
        await until("no process under the test's uids", () =>
          processesInUidRange(range).length === 0 ? true : undefined,
        );
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
      config: {
        drain_timeout: "30s",
        workers: {
          eg: {
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
              // An RFC 1918 host let through, a public one refused.
              egress: { allow: [`${world.rfc1918}/32`], deny: [`${world.internet2}/32`] },
            },
          },
        },
      },
      env,
    });
    const d = daemon;
    daemons.push(d.pid);
    const connect = (session: string, host: string): Promise<Answer> =>
      ask(d, "eg", session, `/connect?host=${encodeURIComponent(host)}&port=80`);
    /** What the pool's filter lets `session`'s worker reach of the outside world. */
    const reach = async (session: string) => ({
      allowed: (await connect(session, world.rfc1918)).ok,
      internet: (await connect(session, world.internet)).ok,
      denied: (await connect(session, world.internet2)).ok,
      cgnat: (await connect(session, world.cgnat)).ok,
    });
    const expected = { allowed: true, internet: true, denied: false, cgnat: false };

    expect(await reach("kept")).toEqual(expected);
    const before = await ask(d, "eg", "kept", "/id");
    const hostPid = await until("the session's worker", () => workerPidOf(d.controlUrl, "kept"));
    const slot = slotOfProcess(hostPid)!;
    expect(slot).toBeDefined();
    slots.push(slot);
    const oldReaper = reaperOf(d.pid)!;
    expect(oldReaper).toBeDefined();
    owners.push(d.pid, oldReaper);
    // The slot's claim names what ends the worker (its generation's reaper), not the daemon.
    expect(egressClaims().get(slot)).toBe(oldReaper);
    expect(tableOf(d.pid)).toContain(slot);

    const run = spawnCaptured(process.execPath, [HERD_BIN, "restart", "--addr", d.controlUrl]);
    const exit = await run.exited;
    expect({ code: exit.code, stderr: run.stderr() }).toEqual({ code: 0, stderr: "" });
    await until("the old daemon to leave", () => (pidAlive(d.pid) ? undefined : true));
    const [successor] = daemonPids(tag);
    expect(daemonPids(tag)).toHaveLength(1);
    daemons.push(successor!);
    const newReaper = reaperOf(successor!)!;
    owners.push(successor!, newReaper);

    // The same process, in the same namespace, served by the new daemon, filtered as before.
    expect(await workerPidOf(d.controlUrl, "kept")).toBe(hostPid);
    const after = await ask(d, "eg", "kept", "/id");
    expect({ pid: after.pid, addresses: after.addresses }).toEqual({
      pid: before.pid,
      addresses: before.addresses,
    });
    expect(slotOfProcess(hostPid)).toBe(slot);
    expect(await reach("kept")).toEqual(expected);
    // Its veth is in the new daemon's table; the old one's table left with it.
    expect(tableOf(successor!)).toContain(slot);
    expect(tableOf(d.pid)).toBeUndefined();
    expect(egressClaims().get(slot)).toBe(oldReaper);
    expect(pidAlive(oldReaper)).toBe(true);

    // A session made after the restart gets egress too, in the new generation.
    expect(await reach("fresh")).toEqual(expected);
    const freshPid = await until("the new session's worker", () =>
      workerPidOf(d.controlUrl, "fresh"),
    );
    const freshSlot = slotOfProcess(freshPid)!;
    slots.push(freshSlot);
    expect(freshSlot).not.toBe(slot);
    expect(egressClaims().get(freshSlot)).toBe(newReaper);
    expect(tableOf(successor!)).toContain(freshSlot);

    // The handed worker ends: its namespace, veth and claim go with it.
    await rpc(d.controlUrl, "ReleaseSession", { sessionId: "kept", kill: true });
    await until("the handed worker to end", () => (pidAlive(hostPid) ? undefined : true));
    await until("its egress state to go", () =>
      egressLeftovers([], [oldReaper], [slot]).length === 0 ? true : undefined,
    );
    expect(tableOf(successor!)).not.toContain(slot);
  }, 240_000);
});
