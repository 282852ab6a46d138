// `herd restart` with a contained pool (src/sandbox: its own uid from uid_range, a private
// network reached through the relay socket, a private filesystem): the new process keeps the
// session's worker (same host pid, same process inside: its request counter goes on), the
// session still answers through the data plane, its host-wide uid claim stays held (naming a
// live process, never the old daemon, which leaves) and is released once the worker ends
// after the restart; nothing of the sandboxes is left afterwards. (`network: egress`:
// egress-restart.spec.ts.)

import { readdirSync, readFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { spawnCaptured } from "../helpers/captured.ts";
import { type Daemon, HERD_BIN, startDaemon } from "../helpers/daemon.ts";
import { newLeakTag, pidAlive } from "../helpers/processes.ts";
import { WORKER_FIXTURE } from "../helpers/worker.ts";
import type { UidRange } from "../security/isolation-harness.ts";
import { daemonPids, rpc, stopEveryGeneration, until, workerPidOf } from "./restart-helpers.ts";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A uid range of this run's own (other engineers' tests run on this host at the same time). */
function ownRange(): UidRange {
  const first = 3_000_000 + Math.floor(Math.random() * 90_000) * 10;
  return [first, first + 9];
}

function config(range: UidRange) {
  return {
    drain_timeout: "30s",
    workers: {
      w: {
        cmd: [process.execPath, WORKER_FIXTURE, "--port", "{{.Port}}"],
        min: 1,
        max: 4,
        health_path: "/health",
        isolation: {
          user: "auto",
          uid_range: range.join("-"),
          network: "private",
          filesystem: "private",
        },
      },
    },
  };
}

/** The claims of uids in `range`: uid → the owner's pid the claim names. */
function claims([first, last]: UidRange): Map<number, number> {
  const found = new Map<number, number>();
  for (const name of readdirSync("/run/herd-uids")) {
    const uid = Number(name);
    if (!Number.isInteger(uid) || uid < first || uid > last) continue;
    try {
      found.set(uid, Number(readFileSync(`/run/herd-uids/${name}`, "utf8").split(" ")[0]));
    } catch {}
  }
  return found;
}

/** The uid the worker tree rooted at `root` runs its command as (within `range`). */
function workerUid(root: number, [first, last]: UidRange): number | undefined {
  const parent = new Map<number, number>();
  const uids = new Map<number, number>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const status = readFileSync(`/proc/${name}/status`, "utf8");
      parent.set(Number(name), Number(/^PPid:\s+(\d+)/m.exec(status)?.[1]));
      uids.set(Number(name), Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]));
    } catch {}
  }
  for (const [pid, uid] of uids) {
    if (uid < first || uid > last) continue;
    for (let p: number | undefined = pid; p && p > 1; p = parent.get(p)) {
      if (p === root) return uid;
    }
  }
  return undefined;
}

async function whoami(dataUrl: string, id: string) {
  const res = await fetch(`${dataUrl}/whoami`, {
    headers: { "x-session-id": id, connection: "close" },
  });
  if (!res.ok) throw new Error(`whoami: ${res.status} ${await res.text()}`);
  return (await res.json()) as { pid: number; counter: number; startedAt: number };
}

async function restart(controlUrl: string) {
  const run = spawnCaptured(process.execPath, [HERD_BIN, "restart", "--addr", controlUrl]);
  const exit = await run.exited;
  return { exit, stdout: run.stdout(), stderr: run.stderr() };
}

async function containedDaemon(range: UidRange) {
  const { tag, env } = newLeakTag();
  const daemon: Daemon = await startDaemon({ config: config(range), env });
  cleanups.push(async () => {
    await stopEveryGeneration(tag, daemon, range);
    const left = [...claims(range)].filter(([, owner]) => pidAlive(owner));
    expect(left, "uid claims of live owners left behind").toEqual([]);
  });
  return { daemon, tag };
}

describe("herd restart with a contained pool", () => {
  it("keeps the worker, its relay and its uid claim; the claim goes once the worker ends", async () => {
    const range = ownRange();
    const { daemon, tag } = await containedDaemon(range);
    const before = await whoami(daemon.dataUrl, "kept");
    const hostPid = await until("the session's worker", () =>
      workerPidOf(daemon.controlUrl, "kept"),
    );
    const uid = await until("the worker's uid", () => workerUid(hostPid, range));
    const owner = claims(range).get(uid);
    expect(owner, "the worker's uid is claimed").toBeDefined();
    // Its claim names what ends it (the generation's reaper), not the daemon that will leave.
    expect(owner).not.toBe(daemon.pid);
    expect(pidAlive(owner!)).toBe(true);

    const r = await restart(daemon.controlUrl);
    expect({ code: r.exit.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
    await until("the old daemon to leave", () => (pidAlive(daemon.pid) ? undefined : true));
    expect(daemonPids(tag)).toHaveLength(1);

    // The same process answers, through the data plane, served by the new daemon.
    const after = await whoami(daemon.dataUrl, "kept");
    expect(after.startedAt).toBe(before.startedAt);
    expect(after.counter).toBe(before.counter + 1);
    expect(await workerPidOf(daemon.controlUrl, "kept")).toBe(hostPid);
    expect(workerUid(hostPid, range)).toBe(uid);
    // Still claimed, by a live owner, with the old daemon gone.
    expect(claims(range).get(uid)).toBe(owner);
    expect(pidAlive(owner!)).toBe(true);
    // A new session gets a worker (and uid) of its own.
    await whoami(daemon.dataUrl, "fresh");
    const freshPid = await until("the new session's worker", () =>
      workerPidOf(daemon.controlUrl, "fresh"),
    );
    expect(workerUid(freshPid, range)).not.toBe(uid);

    // The worker ends after the restart: its tree goes, and its uid claim with it.
    await rpc(daemon.controlUrl, "ReleaseSession", { sessionId: "kept", kill: true });
    await until("the adopted worker to end", () => (pidAlive(hostPid) ? undefined : true));
    await until("its uid claim to be released", () => (claims(range).has(uid) ? undefined : true));
  }, 180_000);
});
