// `herd restart` of a cluster node (src/cli/restart.ts, src/cluster/start-cluster.ts), with two
// real nodes on a real redis-server: node A restarts in place while node B watches.
//   - B sees no node_lost, nor any end of A's sessions; A's sessions keep their worker pids and
//     stay reachable through B's data plane (the hop) and A's own, long after the old process
//     left: the new process renews the same lease (a lapse would make B report them lost, and
//     the old process leaving the cluster on exit would delete their records); the alive key
//     never expires (its lowest TTL gives the longest renewal gap); a watcher of A resumes on
//     the new process from the last revision it saw;
//   - the old process killed once it sent the state: the new one is the node;
//   - the new process killed mid-hand-over (after the old one paused its lease): the old one
//     renews again, keeps the sessions, and B still sees no node_lost;
//   - both processes killed mid-hand-over: the node is lost normally (B reports its sessions
//     node_lost) and nothing of it is left running;
//   - a session the new process started before it said it serves, then the new process killed:
//     the old one takes back and drops that session from Redis (B sees it lost), rather than
//     leaving it listed under the node until the node leaves or is lost.

import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, it } from "vitest";
import { SessionEventType } from "../../gen/herd/v1/herd_pb.ts";
import { startCluster, type TestCluster } from "../cluster/cluster-harness.ts";
import { spawnCaptured } from "../helpers/captured.ts";
import { type Daemon, HERD_BIN } from "../helpers/daemon.ts";
import { pidAlive } from "../helpers/processes.ts";
import { daemonPids, stopClusterGenerations, until } from "./restart-helpers.ts";

// The old process pauses its lease for the hand-over and resumes it if the new one dies: a
// pause longer than lease − margin fences its sessions, as it must. 8 s keeps the held
// hand-overs below (several process wake-ups while paused) inside that at load 20; 4 s did not
// (a CI run at high load fenced the "new process killed" case).
const LEASE_MS = 8_000;

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A cluster of A and B whose restarted processes are stopped too, and proven gone. */
async function twoNodes(env: Record<string, string> = {}): Promise<TestCluster> {
  const c = await startCluster([
    { node: "a", config: { drain_timeout: "30s" }, env, lease: `${LEASE_MS}ms` },
    { node: "b", lease: `${LEASE_MS}ms` },
  ]);
  cleanups.push(() => stopClusterGenerations(c));
  return c;
}

async function whoami(dataUrl: string, id: string): Promise<number | undefined> {
  try {
    const res = await fetch(`${dataUrl}/whoami`, {
      headers: { "x-session-id": id, connection: "close" },
      signal: AbortSignal.timeout(10_000),
    });
    if (!res.ok) return undefined;
    return ((await res.json()) as { pid: number }).pid;
  } catch {
    return undefined;
  }
}

interface Seen {
  type: SessionEventType;
  sessionId: string;
  reason: string;
  node: string;
  revision: bigint;
}

/** Every event B's WatchSessions delivers, until `stop`. */
function watch(c: TestCluster, b: Daemon, sinceRevision = 0n) {
  const events: Seen[] = [];
  const stop = new AbortController();
  const done = (async () => {
    try {
      const stream = c.client(b).watchSessions({ sinceRevision }, { signal: stop.signal });
      for await (const e of stream) {
        events.push({
          type: e.type,
          sessionId: e.sessionId,
          reason: e.reason,
          node: e.node,
          revision: e.revision,
        });
      }
    } catch {}
  })();
  return {
    events,
    async stop() {
      stop.abort();
      await done;
    },
  };
}

/** Samples PTTL of `node`'s alive key until `stop`, which resolves with the lowest seen. */
async function sampleAliveTtl(url: string, node: string) {
  const client = (await import("redis")).createClient({ url });
  client.on("error", () => {});
  await client.connect();
  let lowest = Number.POSITIVE_INFINITY;
  let running = true;
  const done = (async () => {
    while (running) {
      const ms = await client.pTTL(`herd:alive:${node}`);
      lowest = Math.min(lowest, Math.max(ms, 0));
      await sleep(20);
    }
  })();
  return {
    async stop() {
      running = false;
      await done;
      client.destroy();
      return lowest;
    },
  };
}

/** Two sessions on A, each answering through A's data plane and B's (the hop). */
/**
 * Two nodes whose restarts stop at the hold hook's steps (HERD_RESTART_HOLD: `hold`), b's
 * events watched, and node a's sessions started (their worker pids).
 */
async function heldCluster() {
  const hold = mkdtempSync(join(tmpdir(), "herd-cluster-restart-hold-"));
  cleanups.push(async () => rmSync(hold, { recursive: true, force: true }));
  const c = await twoNodes({ HERD_RESTART_HOLD: hold });
  const [a, b] = c.nodes as [Daemon, Daemon];
  const watcher = watch(c, b);
  const pids = await sessionsOnA(c);
  return { hold, c, a, b, watcher, pids };
}

async function sessionsOnA(c: TestCluster): Promise<Map<string, number>> {
  const [a, b] = c.nodes as [Daemon, Daemon];
  const pids = new Map<string, number>();
  for (const id of ["s1", "s2"]) {
    const pid = await whoami(a.dataUrl, id);
    expect(pid).toBeGreaterThan(0);
    expect(await whoami(b.dataUrl, id)).toBe(pid);
    pids.set(id, pid!);
  }
  return pids;
}

/** Lost events of A's sessions among what B saw. */
function lostOnA(events: Seen[]) {
  return events.filter((e) => e.node === "a" && e.type === SessionEventType.SESSION_LOST);
}

/** End events (released, expired, lost) of the given sessions among what B saw. */
function ends(events: Seen[], ids: string[]) {
  return events.filter(
    (e) =>
      ids.includes(e.sessionId) &&
      e.type >= SessionEventType.SESSION_RELEASED &&
      e.type <= SessionEventType.SESSION_LOST,
  );
}

describe("herd restart of a cluster node", () => {
  it("keeps the node's lease and sessions: B sees no node_lost and still reaches them", async () => {
    const c = await twoNodes();
    const [a, b] = c.nodes as [Daemon, Daemon];
    const watcher = watch(c, b);
    // A's own watcher: its stream ends with the old process; it resumes on the new one.
    const onA = watch(c, a);
    const pids = await sessionsOnA(c);
    await until("A's watcher saw both acquires", () =>
      onA.events.filter((e) => e.type === SessionEventType.SESSION_ACQUIRED).length >= 2
        ? true
        : undefined,
    );

    // The alive key's remaining time, sampled all through the restart: the longest gap between
    // two renewals is the lease minus its lowest value (the key must never expire).
    const ttl = await sampleAliveTtl(c.redis.url, "a");
    const run = spawnCaptured(process.execPath, [
      HERD_BIN,
      "restart",
      "--addr",
      a.controlUrl,
      "--json",
    ]);
    expect((await run.exited).code, run.stderr()).toBe(0);
    const result = JSON.parse(run.stdout()) as { pid: number; sessions: number };
    expect(result.pid).not.toBe(a.pid);
    expect(result.sessions).toBe(2);
    // The old process leaves once its connections closed (each request here closes its own).
    await until("the old process exits", () => !pidAlive(a.pid));

    // Well past a lease after the old process stopped renewing: the new one renews.
    await sleep(2 * LEASE_MS);
    const lowest = await ttl.stop();
    console.log(
      `cluster restart: longest renewal gap ${LEASE_MS - lowest} ms (lease ${LEASE_MS} ms)`,
    );
    expect(lowest).toBeGreaterThan(0);
    for (const [id, pid] of pids) {
      expect(pidAlive(pid)).toBe(true);
      expect(await whoami(a.dataUrl, id)).toBe(pid);
      expect(await whoami(b.dataUrl, id)).toBe(pid);
    }
    const listed = await c.client(b).listSessions({});
    expect(
      listed.sessions
        .filter((s) => s.node === "a")
        .map((s) => [s.sessionId, s.workerPid])
        .sort(),
    ).toEqual([...pids].sort());
    // A new session placed on A by B's control plane lands on the new process.
    const placed = await c.client(a).acquireSession({ pool: "w", sessionId: "s3" });
    expect(placed.session?.node).toBe("a");
    expect(await whoami(b.dataUrl, "s3")).toBe(placed.session?.workerPid);
    // A's watcher resumes from the last revision it saw, on the new process: the revisions go
    // on, and the first acquire after it is s3's (nothing between was lost or renumbered).
    await onA.stop();
    const last = onA.events.at(-1)!.revision;
    const resumed = watch(c, a, last);
    const s3 = await until("the resumed watcher sees s3", () =>
      resumed.events.find(
        (e) => e.sessionId === "s3" && e.type === SessionEventType.SESSION_ACQUIRED,
      ),
    );
    await resumed.stop();
    expect(s3.revision).toBeGreaterThan(last);
    expect(resumed.events.every((e) => e.revision > last)).toBe(true);
    expect(ends(resumed.events, ["s1", "s2"])).toEqual([]);

    await watcher.stop();
    expect(lostOnA(watcher.events)).toEqual([]);
    expect(ends(watcher.events, ["s1", "s2"])).toEqual([]);
  });

  it("refuses a config that renames the node, and changes nothing", async () => {
    const c = await twoNodes();
    const [a, b] = c.nodes as [Daemon, Daemon];
    const pids = await sessionsOnA(c);
    const config = readFileSync(a.configFile, "utf8");
    expect(config).toMatch(/node: a\n/);
    writeFileSync(a.configFile, config.replace(/node: a\n/, "node: renamed\n"));
    const run = spawnCaptured(process.execPath, [HERD_BIN, "restart", "--addr", a.controlUrl]);
    expect((await run.exited).code).toBe(1);
    expect(run.stderr()).toMatch(
      /restart refused: \S+: cluster\.node: renamed differs from the running daemon's a/,
    );
    expect(daemonPids(c.leak.tag).sort()).toEqual([a.pid, b.pid].sort());
    for (const [id, pid] of pids) expect(await whoami(b.dataUrl, id)).toBe(pid);
  });

  it("a session the new process started before serving, then SIGKILL of it: the old one drops it from Redis", async () => {
    const { hold, c, a, b, watcher, pids } = await heldCluster();
    const redis = (await import("redis")).createClient({ url: c.redis.url });
    redis.on("error", () => {});
    await redis.connect();
    cleanups.push(async () => {
      redis.destroy();
    });

    process.kill(a.pid, "SIGUSR2");
    await until("the new process listens, not yet serving", () => {
      const before = ["old-spawned", "new-validated", "old-handed", "new-received"];
      for (const step of [...before, "new-adopted", "old-committed"]) {
        if (existsSync(join(hold, step))) writeFileSync(join(hold, `${step}.go`), "");
      }
      return existsSync(join(hold, "new-serving"));
    });
    const newPid = (JSON.parse(readFileSync(join(hold, "new-serving"), "utf8")) as { pid: number })
      .pid;
    // Both processes accept on the shared listener; the old one, handed over, starts nothing:
    // a fresh connection each time until the new one took it (one placed on B is let go).
    const rpc = async (method: string, body: unknown) => {
      const res = await fetch(`${a.controlUrl}/herd.v1.HerdService/${method}`, {
        method: "POST",
        headers: { "content-type": "application/json", connection: "close" },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(10_000),
      }).catch(() => undefined);
      return res?.ok ? ((await res.json()) as Record<string, unknown>) : undefined;
    };
    let attempt = 0;
    const started = await until("a session started by the new process", async () => {
      const sessionId = `orphaned-${++attempt}`;
      const r = (await rpc("AcquireSession", { pool: "w", sessionId })) as
        | { session: { workerPid: number; node: string } }
        | undefined;
      if (r && r.session.node !== "a") await rpc("ReleaseSession", { sessionId, kill: true });
      return r?.session.node === "a" && { id: sessionId, ...r.session };
    });
    const owned = async () => Boolean(await redis.sIsMember("herd:owned:a", started.id));
    expect(await owned()).toBe(true);

    process.kill(newPid, "SIGKILL");
    await until("Redis no longer lists the dead process's session", async () =>
      !(await owned()) && (await redis.exists(`herd:s:${started.id}`)) === 0 ? true : undefined,
    );
    await until("its worker is gone", () => !pidAlive(started.workerPid));
    await until("B sees it lost", () =>
      lostOnA(watcher.events).find((e) => e.sessionId === started.id),
    );
    // The old process kept the node and its own sessions.
    expect(pidAlive(a.pid)).toBe(true);
    for (const [id, pid] of pids) expect(await whoami(b.dataUrl, id)).toBe(pid);
    expect([...(await redis.sMembers("herd:owned:a"))].sort()).toEqual(["s1", "s2"]);
    await watcher.stop();
    expect(ends(watcher.events, ["s1", "s2"])).toEqual([]);
  });

  const CASES = {
    new: "SIGKILL of the new process mid-hand-over: the old one renews on, B sees no node_lost",
    old: "SIGKILL of the old process once it sent the state: the new one is the node, B sees no node_lost",
    both: "SIGKILL of both processes mid-hand-over: A is lost normally, nothing left running",
  };
  for (const victim of ["new", "old", "both"] as const) {
    it(CASES[victim], async () => {
      const { hold, c, a, b, watcher, pids } = await heldCluster();

      process.kill(a.pid, "SIGUSR2");
      // Let every step through up to the new process holding the state (the old one has paused
      // its lease and sent the claims), and stop it there.
      const release = (upTo: string[]) => {
        for (const name of readdirSync(hold)) {
          if (upTo.includes(name) && !existsSync(join(hold, `${name}.go`))) {
            writeFileSync(join(hold, `${name}.go`), "");
          }
        }
      };
      await until("the new process holds the state", () => {
        release(["old-spawned", "new-validated", "old-handed"]);
        return existsSync(join(hold, "new-received"));
      });
      const newPid = daemonPids(c.leak.tag).find((p) => p !== a.pid && p !== b.pid);
      expect(newPid).toBeDefined();
      if (victim !== "old") process.kill(newPid!, "SIGKILL");
      if (victim !== "new") process.kill(a.pid, "SIGKILL");

      if (victim === "old") {
        // The new process goes on alone through its remaining steps.
        await until("the new process serves", () => {
          release(["new-received", "new-adopted", "new-serving"]);
          return existsSync(join(hold, "new-serving.go"));
        });
        await sleep(2 * LEASE_MS);
        for (const [id, pid] of pids) {
          expect(pidAlive(pid)).toBe(true);
          expect(await whoami(b.dataUrl, id)).toBe(pid);
        }
        expect(pidAlive(newPid!)).toBe(true);
        await watcher.stop();
        expect(ends(watcher.events, ["s1", "s2"])).toEqual([]);
      } else if (victim === "new") {
        await sleep(2 * LEASE_MS);
        for (const [id, pid] of pids) {
          expect(pidAlive(pid)).toBe(true);
          expect(await whoami(b.dataUrl, id)).toBe(pid);
        }
        await watcher.stop();
        expect(ends(watcher.events, ["s1", "s2"])).toEqual([]);
      } else {
        await until("B reports A's sessions lost", () => lostOnA(watcher.events).length >= 2);
        await watcher.stop();
        await until("A's workers are gone", () => [...pids.values()].every((p) => !pidAlive(p)));
        expect(lostOnA(watcher.events).map((e) => e.reason)).toEqual(["node_lost", "node_lost"]);
      }
    });
  }
});
