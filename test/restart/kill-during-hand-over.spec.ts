// SIGKILL of the old daemon, the new one, or both, paused at each step of a restart's hand-over
// (src/cli/restart.ts, its HERD_RESTART_HOLD hook): no worker is ever left without an owner,
// none is ever owned by both, and none is killed that a surviving daemon still owns.
//
// Each case runs a real daemon (bin/herd) with two sessions, each with a setsid'd grandchild
// (which leaves the worker's process group, not its cgroup), starts a restart with SIGUSR2,
// releases the steps before the one under test, kills at it, then checks, once things settled:
//   - every worker and grandchild still running is in a session a live daemon lists (no
//     orphan), and with no daemon left nothing of the test runs at all;
//   - where the design promises the sessions survive (the new process killed at any step: the
//     old one reclaims them; the old one killed once the state was sent: the new one owns
//     them), every worker pid is still running, in a session the survivor lists;
//   - a contained pool (its own uid per worker, `network: egress`, a private filesystem) the
//     same, and its workers' uid claims name a live process while a worker of its uid lives,
//     and none once no daemon is left; each surviving worker stays in its network namespace,
//     its veth in the survivor's nftables table under a claim naming a live process; once the
//     survivor stopped (or none survived) no claim of the test names a live process, and after
//     the daemons' sweep of dead ones' leftovers (egress-host.ts) no table, claim, namespace or
//     veth of the test is left;
//   - at every step, each process's own report of the workers it owns (its Herd's sessions) is
//     empty on the side that does not own them: the old one from "handed" on, the new one
//     before "adopted".

import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  egressClaims,
  egressLeftovers,
  reaperOf,
  slotOfProcess,
  slotsOf,
  sweepEgressOrphans,
  tableOf,
} from "../egress/egress-state.ts";
import { type Daemon, startDaemon } from "../helpers/daemon.ts";
import { expectNoLeaks, newLeakTag, pidAlive, pidsWithTag } from "../helpers/processes.ts";
import { WORKER_FIXTURE } from "../helpers/worker.ts";
import { processesInUidRange, type UidRange } from "../security/isolation-harness.ts";
import { daemonPids, HAND_OVER_STEPS, type HandOverStep, until } from "./restart-helpers.ts";

type Victim = "old" | "new" | "both";
const STEPS = HAND_OVER_STEPS;
type StepName = HandOverStep;
/** Steps at which the old process has sent the whole state: the new one can own it all. */
const STATE_SENT = new Set<StepName>([
  "old-handed",
  "new-received",
  "new-adopted",
  "old-committed",
  "new-serving",
]);

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function listedWorkerPids(controlUrl: string): Promise<number[] | undefined> {
  try {
    const res = await fetch(`${controlUrl}/herd.v1.HerdService/ListSessions`, {
      method: "POST",
      headers: { "content-type": "application/json", connection: "close" },
      body: "{}",
      signal: AbortSignal.timeout(5_000),
    });
    if (!res.ok) return undefined;
    const body = (await res.json()) as { sessions?: { workerPid?: number }[] };
    return (body.sessions ?? []).map((s) => s.workerPid ?? 0);
  } catch {
    return undefined;
  }
}

/** Uids in `range` whose host-wide claim names a live process. */
function liveClaims([first, last]: UidRange): number[] {
  const held: number[] = [];
  for (let uid = first; uid <= last; uid++) {
    try {
      const owner = Number(readFileSync(`/run/herd-uids/${uid}`, "utf8").split(" ")[0]);
      if (pidAlive(owner)) held.push(uid);
    } catch {}
  }
  return held;
}

function uidOf(pid: number): number {
  return Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]);
}

async function killCase(step: StepName, victim: Victim, contained = false) {
  const { tag, env } = newLeakTag();
  const first = 3_500_000 + Math.floor(Math.random() * 90_000) * 10;
  const range: UidRange = [first, first + 9];
  const hold = mkdtempSync(join(tmpdir(), "herd-restart-hold-"));
  let daemon: Daemon | undefined;
  cleanups.push(async () => {
    for (const pid of daemonPids(tag)) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {}
    }
    await daemon?.kill();
    await expectNoLeaks(tag);
    rmSync(hold, { recursive: true, force: true });
  });
  daemon = await startDaemon({
    config: {
      workers: {
        w: {
          cmd: [process.execPath, WORKER_FIXTURE, "--port", "{{.Port}}"],
          min: 0,
          max: 4,
          health_path: "/health",
          isolation: contained
            ? {
                user: "auto",
                uid_range: range.join("-"),
                network: "egress",
                filesystem: "private",
              }
            : "none",
        },
      },
    },
    env: { ...env, HERD_RESTART_HOLD: hold },
  });
  const { controlUrl, dataUrl } = daemon;
  const workers: number[] = [];
  const grandchildren: number[] = [];
  for (const id of ["a", "b"]) {
    const who = (await (
      await fetch(`${dataUrl}/whoami`, { headers: { "x-session-id": id } })
    ).json()) as { pid: number };
    const spawned = (await (
      await fetch(`${dataUrl}/control/spawn?count=1&setsid=1`, {
        method: "POST",
        headers: { "x-session-id": id },
      })
    ).json()) as { pids: number[] };
    workers.push(who.pid);
    grandchildren.push(...spawned.pids);
  }
  if (contained) {
    // Inside its PID namespace a worker's pids are its own: follow the host's instead (the
    // trees' roots as listed, and every process under the workers' uids, grandchildren too).
    workers.splice(0, 2, ...((await listedWorkerPids(controlUrl)) ?? []));
    grandchildren.splice(0, grandchildren.length, ...processesInUidRange(range));
    expect(workers).toHaveLength(2);
    expect(grandchildren.length).toBeGreaterThanOrEqual(4);
    // (a prepared spare holds a claim too)
    expect(liveClaims(range)).toEqual(expect.arrayContaining(grandchildren.map(uidOf)));
  }
  expect([...workers, ...grandchildren].every(pidAlive)).toBe(true);

  const oldPid = daemon.pid;
  // network: egress: every slot of the test (workers', a spare's) and whom the claims name.
  const owners = [oldPid, reaperOf(oldPid) ?? oldPid];
  const slots = contained ? slotsOf(owners) : [];
  if (contained) {
    const ofWorkers = workers.map(slotOfProcess);
    expect(slots).toEqual(expect.arrayContaining(ofWorkers));
    expect(tableOf(oldPid)).toEqual(expect.arrayContaining(ofWorkers));
  }
  process.kill(oldPid, "SIGUSR2");
  // Release the steps before the one under test (the other process is held at its next one,
  // so the kill finds the hand-over exactly there); record what each process said it owns.
  const reports = new Map<string, { pid: number; owns: number[] }>();
  const release = (all: boolean) => {
    for (const name of readdirSync(hold)) {
      if (/\.(go|part)$/.test(name) || existsSync(join(hold, `${name}.go`))) continue;
      const report = JSON.parse(readFileSync(join(hold, name), "utf8"));
      reports.set(name, report);
      const before = STEPS.indexOf(name as StepName) < STEPS.indexOf(step);
      if (all || before) writeFileSync(join(hold, `${name}.go`), "");
    }
  };
  await until(`step ${step}`, () => {
    release(false);
    return reports.has(step) ? true : undefined;
  });
  const newPid = await until("the new process", () =>
    daemonPids(tag).find((pid) => pid !== oldPid),
  );
  const newReaper = reaperOf(newPid);
  owners.push(newPid, ...(newReaper ? [newReaper] : []));
  if (victim !== "new") process.kill(oldPid, "SIGKILL");
  if (victim !== "old") process.kill(newPid, "SIGKILL");
  // The survivor goes on; its later steps are released as they come.
  const releasing = setInterval(() => release(true), 20);
  cleanups.push(async () => clearInterval(releasing));

  const survivor = victim === "both" ? undefined : victim === "old" ? newPid : oldPid;
  const survives = survivor !== undefined && (victim === "new" || STATE_SENT.has(step));
  if (survives) {
    // Every worker kept, each listed by the survivor, which alone still runs.
    const listed = await until("the survivor to list every worker", async () => {
      if (daemonPids(tag).length !== 1) return undefined;
      const pids = await listedWorkerPids(controlUrl);
      return pids && workers.every((p) => pids.includes(p)) ? pids : undefined;
    }).catch((err: Error) => {
      // Both processes log to the pipes the test started the old one with.
      throw new Error(
        `${err.message}; the daemons said:\n${daemon?.stdout().slice(-4000)}\nstderr:\n${daemon?.stderr().slice(-3000)}`,
      );
    });
    expect(daemonPids(tag)).toEqual([survivor]);
    expect(workers.filter((p) => !listed.includes(p))).toEqual([]);
    expect([...workers, ...grandchildren].filter((p) => !pidAlive(p))).toEqual([]);
    if (contained) {
      // (a prepared spare holds a claim too)
      expect(liveClaims(range)).toEqual(expect.arrayContaining(grandchildren.map(uidOf)));
      // Each worker in its own namespace still, filtered by the survivor's table.
      const ofWorkers = workers.map(slotOfProcess);
      expect(slots).toEqual(expect.arrayContaining(ofWorkers));
      expect(tableOf(survivor!)).toEqual(expect.arrayContaining(ofWorkers));
      expect(ofWorkers.filter((slot) => !pidAlive(egressClaims().get(slot!) ?? 0))).toEqual([]);
      // The survivor stops as a daemon does: every worker ends, its egress state with it.
      const survivorReaper = reaperOf(survivor!);
      if (survivorReaper) owners.push(survivorReaper);
      process.kill(survivor!, "SIGTERM");
      await until("every process of the test to be gone", () =>
        pidsWithTag(tag).length === 0 ? true : undefined,
      );
    }
  } else {
    // No daemon owns them (a new process killed before it had everything exits by itself):
    // every process of the test is gone, reapers included, none orphaned.
    await until("every process of the test to be gone", () =>
      pidsWithTag(tag).length === 0 ? true : undefined,
    );
    if (contained) {
      await until("no process under the workers' uids", () =>
        processesInUidRange(range).length === 0 ? true : undefined,
      );
      expect(liveClaims(range), "uid claims held for workers that are gone").toEqual([]);
    }
  }
  if (contained) {
    const live = [...egressClaims()].filter(
      ([, owner]) => owners.includes(owner) && pidAlive(owner),
    );
    expect(live, "slot claims of live processes with no daemon left").toEqual([]);
    // What a SIGKILLed daemon left, the next daemon's sweep removes: then nothing is left.
    // (the kernel frees a namespace, and the veth in it, a moment after its last process left)
    sweepEgressOrphans();
    await until("the test's egress state to go", () =>
      egressLeftovers([oldPid, newPid], owners, slots).length === 0 ? true : undefined,
    ).catch(() => expect(egressLeftovers([oldPid, newPid], owners, slots)).toEqual([]));
  }
  // Never two owners: each side's own account, at each step it reached.
  for (const [name, { owns }] of reports) {
    const heldByOld = name.startsWith("old-") && name !== "old-spawned";
    const heldByNew = ["new-validated", "new-received"].includes(name);
    if (heldByOld || heldByNew) expect({ name, owns }).toEqual({ name, owns: [] });
  }
  if (reports.has("new-adopted")) {
    expect(reports.get("new-adopted")!.owns.sort()).toEqual([...workers].sort());
  }
  if (reports.has("old-spawned")) {
    expect(reports.get("old-spawned")!.owns.sort()).toEqual([...workers].sort());
  }
}

describe("SIGKILL during a restart's hand-over", () => {
  for (const step of STEPS) {
    for (const victim of ["old", "new", "both"] as const) {
      it(`at ${step}, killing ${victim}: no orphan, never two owners`, async () => {
        await killCase(step, victim);
      }, 180_000);
    }
  }
});

describe("SIGKILL during a restart's hand-over, a contained pool with network: egress", () => {
  for (const step of STEPS) {
    for (const victim of ["old", "new", "both"] as const) {
      it(`at ${step}, killing ${victim}: no orphan, no stale claim, table, namespace or veth, never two owners`, async () => {
        await killCase(step, victim, true);
      }, 180_000);
    }
  }
});
