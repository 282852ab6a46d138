// What the restart specs share: finding every herd daemon of a test (old and new generations
// alike), waiting for a condition across a hand-over, and stopping every generation at the end.

import { setTimeout as sleep } from "node:timers/promises";
import type { TestCluster } from "../cluster/cluster-harness.ts";
import type { Daemon } from "../helpers/daemon.ts";
import { cmdline, expectNoLeaks, pidsWithTag } from "../helpers/processes.ts";
import { WORKER_FIXTURE } from "../helpers/worker.ts";
import { processesInUidRange, type UidRange } from "../security/isolation-harness.ts";

/**
 * The hand-over's steps in order, as src/cli/restart.ts's HERD_RESTART_HOLD hook names them
 * (`<role>-<step>`: the process that pauses there).
 */
export const HAND_OVER_STEPS = [
  "old-spawned",
  "new-validated",
  "old-handed",
  "new-received",
  "new-adopted",
  "old-committed",
  "new-serving",
] as const;
export type HandOverStep = (typeof HAND_OVER_STEPS)[number];

/** An uncontained pool of the fixture worker, and the old process's time to serve its connections. */
export const RESTART_CONFIG = {
  drain_timeout: "30s",
  workers: {
    w: {
      cmd: [process.execPath, WORKER_FIXTURE, "--port", "{{.Port}}"],
      min: 1,
      max: 8,
      health_path: "/health",
      isolation: "none",
    },
  },
};

/** Every `herd serve` process carrying the test's leak tag: both sides of a restart. */
export function daemonPids(tag: string): number[] {
  return pidsWithTag(tag).filter((pid) => cmdline(pid).includes("bin/herd serve"));
}

/** Polls `probe` until it gives a value (not undefined, not false); fails after 90 s. */
export async function until<T>(
  what: string,
  probe: () => T | undefined | false | Promise<T | undefined | false>,
): Promise<T> {
  const deadline = Date.now() + 90_000;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

/**
 * Stops every generation of a test's daemon at once (drain_timeout 0 in tests: no draining) and
 * proves nothing of it is left: no daemon, no tagged process, none under the test's uids.
 * `daemon` is stopped by its own handle; the others get one SIGINT each (a second signal makes a
 * daemon exit without its cleanup).
 */
export async function stopEveryGeneration(
  tag: string,
  daemon: Daemon | undefined,
  uids?: UidRange,
): Promise<void> {
  for (const pid of daemonPids(tag)) {
    if (pid === daemon?.pid) continue;
    try {
      process.kill(pid, "SIGINT");
    } catch {}
  }
  await daemon?.stop();
  await until("every daemon of the test to leave", () => daemonPids(tag).length === 0);
  await expectNoLeaks(tag);
  if (uids) {
    await until("no process under the test's uids", () => processesInUidRange(uids).length === 0);
  }
}

/** One Connect JSON call to the daemon at `controlUrl` (a fresh connection: it may be handed over). */
export async function rpc(controlUrl: string, method: string, body: unknown): Promise<unknown> {
  const res = await fetch(`${controlUrl}/herd.v1.HerdService/${method}`, {
    method: "POST",
    headers: { "content-type": "application/json", connection: "close" },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`${method}: ${res.status} ${await res.text()}`);
  return res.json();
}

/** The host pid of session `id`'s worker, as the daemon at `controlUrl` lists it. */
export async function workerPidOf(controlUrl: string, id: string): Promise<number | undefined> {
  const { sessions } = (await rpc(controlUrl, "ListSessions", {})) as {
    sessions?: { sessionId?: string; workerPid?: number }[];
  };
  return sessions?.find((s) => s.sessionId === id)?.workerPid;
}

/**
 * Stops a test cluster whose nodes may have been restarted: every successor generation (a
 * daemon of its tag the cluster did not start) is interrupted and awaited, then the cluster's
 * own cleanup runs (its nodes, Redis, the leak check).
 */
export async function stopClusterGenerations(c: TestCluster): Promise<void> {
  const tracked = new Set(c.nodes.map((d) => d.pid));
  for (const pid of daemonPids(c.leak.tag)) {
    if (tracked.has(pid)) continue;
    try {
      process.kill(pid, "SIGINT");
    } catch {}
  }
  await until("the restarted daemons exit", () =>
    daemonPids(c.leak.tag).every((pid) => tracked.has(pid)),
  );
  await c.cleanup();
}
