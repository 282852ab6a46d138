import { once } from "node:events";
import { existsSync, readdirSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { eventually, getJson, herdFixture, recordEvents } from "../../test/helpers/herd.ts";
import { generationOf, pidAlive } from "../../test/helpers/processes.ts";
import type { HerdEvent } from "../core/index.ts";
import { isHerdError } from "../core/index.ts";

const fx = herdFixture();
afterEach(() => fx.cleanup());

/** Every `name` directory at the top of a cgroup hierarchy (v2 root or a v1 controller). */
function cgroupDirs(name: string): string[] {
  const root = "/sys/fs/cgroup";
  const tops = [root, ...readdirSync(root).map((d) => join(root, d))];
  return tops.map((top) => join(top, name)).filter((dir) => existsSync(dir));
}

interface WhoAmI {
  pid: number;
  counter: number;
}

describe("affinity", () => {
  it("pins one id to one worker and different ids to different workers", async () => {
    const herd = await fx.start({ max: 3 });
    const a = await herd.acquire("w", "alice");
    const b = await herd.acquire("w", "bob");
    expect(b.workerId).not.toBe(a.workerId);
    for (let i = 1; i <= 3; i++) {
      const again = await herd.acquire("w", "alice");
      expect(again.workerId).toBe(a.workerId);
      const who = await getJson<WhoAmI>(again.workerAddress, "/whoami");
      expect(who).toMatchObject({ pid: a.workerPid, counter: i });
    }
    const bob = await getJson<WhoAmI>(b.workerAddress, "/whoami");
    expect(bob).toMatchObject({ pid: b.workerPid, counter: 1 });
    expect(herd.lookup("alice")?.workerId).toBe(a.workerId);
    expect(
      herd
        .sessions()
        .map((s) => s.id)
        .sort(),
    ).toEqual(["alice", "bob"]);
  });

  it("gives 100 concurrent acquires of one new id exactly one worker", async () => {
    const herd = await fx.start({ max: 10 });
    const all = await Promise.all(Array.from({ length: 100 }, () => herd.acquire("w", "same")));
    expect(new Set(all.map((s) => s.workerId)).size).toBe(1);
    expect(herd.stats().pools[0]).toMatchObject({ workersTotal: 1, sessions: 1 });
  });

  it("binds an idle worker at once: concurrent acquires of the id share it, labels as called", async () => {
    const herd = await fx.start({ min: 2, max: 2 });
    const labels = { team: "a" };
    const first = herd.acquire("w", "same", { labels });
    labels.team = "changed after the call";
    // The first acquire took the idle worker in its own tick: these find the session live.
    const all = await Promise.all([
      first,
      ...Array.from({ length: 50 }, () => herd.acquire("w", "same")),
    ]);
    expect(new Set(all.map((s) => s.workerId)).size).toBe(1);
    expect(all[0]!.labels).toEqual({ team: "a" });
    expect(herd.stats().pools[0]).toMatchObject({ workersTotal: 2, workersIdle: 1, sessions: 1 });
  });

  it("never gives two concurrently starting workers one port", async () => {
    // 30 Node workers booting at once is seconds of CPU on two shared cores: no start timeout.
    const herd = await fx.start({ max: 30, startTimeoutMs: 120_000 });
    const all = await Promise.all(Array.from({ length: 30 }, (_, i) => herd.acquire("w", `p${i}`)));
    expect(new Set(all.map((s) => s.workerAddress)).size).toBe(30);
    for (const s of all) {
      expect((await getJson<WhoAmI>(s.workerAddress, "/whoami")).pid).toBe(s.workerPid);
    }
  });

  it("generates unguessable ids when none is given", async () => {
    const herd = await fx.start({ max: 2 });
    const a = await herd.acquire("w", undefined);
    const b = await herd.acquire("w", "");
    expect(a.id).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(b.id).not.toBe(a.id);
    expect(a.token.length).toBeGreaterThanOrEqual(32);
  });

  it("rejects bad ids, unknown pools, unknown sessions and an id live in another pool", async () => {
    const herd = await fx.start({ name: "a", max: 1 }, { name: "b", max: 1 });
    await expect(herd.acquire("a", "bad id!")).rejects.toMatchObject({ code: "invalid_argument" });
    await expect(herd.acquire("a", "x".repeat(129))).rejects.toMatchObject({
      code: "invalid_argument",
    });
    await expect(herd.acquire("nope", "s1")).rejects.toMatchObject({ code: "not_found" });
    await expect(herd.release("ghost")).rejects.toMatchObject({ code: "not_found" });
    await herd.acquire("a", "s1");
    await expect(herd.acquire("b", "s1")).rejects.toMatchObject({ code: "failed_precondition" });
  });
});

describe("queueing at max", () => {
  it("serves waiters first in, first out", async () => {
    const herd = await fx.start({ max: 1, min: 1 });
    await herd.acquire("w", "holder");
    const order: string[] = [];
    const waiters = ["q1", "q2", "q3"].map((id) =>
      herd.acquire("w", id, { waitMs: 10_000 }).then((s) => {
        order.push(id);
        return s;
      }),
    );
    await eventually("3 queued", () => herd.stats().pools[0]!.queued === 3);
    await herd.release("holder");
    await waiters[0];
    await herd.release("q1");
    await waiters[1];
    await herd.release("q2");
    await waiters[2];
    expect(order).toEqual(["q1", "q2", "q3"]);
  });

  it("times a waiter out with deadline_exceeded and never leaks the worker", async () => {
    const herd = await fx.start({ max: 1 });
    const holder = await herd.acquire("w", "holder");
    const err = await herd.acquire("w", "late", { waitMs: 150 }).catch((e: unknown) => e);
    expect(isHerdError(err, "deadline_exceeded")).toBe(true);
    expect(herd.stats().pools[0]!.queued).toBe(0);
    await herd.release("holder");
    const next = await herd.acquire("w", "next");
    expect(next.workerId).toBe(holder.workerId);
    expect(herd.lookup("late")).toBeUndefined();
    expect(herd.stats().pools[0]).toMatchObject({ workersTotal: 1, sessions: 1 });
  });

  it("removes a cancelled waiter from the queue", async () => {
    const herd = await fx.start({ max: 1 });
    await herd.acquire("w", "holder");
    const abort = new AbortController();
    const pending = herd.acquire("w", "cancelled", { signal: abort.signal });
    await eventually("queued", () => herd.stats().pools[0]!.queued === 1);
    abort.abort();
    await expect(pending).rejects.toMatchObject({ code: "cancelled" });
    expect(herd.stats().pools[0]!.queued).toBe(0);
    await herd.release("holder");
    expect(herd.lookup("cancelled")).toBeUndefined();
    expect(herd.stats().pools[0]).toMatchObject({ sessions: 0, workersIdle: 1 });
  });

  it("refuses beyond the queue limit with resource_exhausted", async () => {
    const herd = await fx.start({ max: 1, queueLimit: 1 });
    await herd.acquire("w", "holder");
    const queued = herd.acquire("w", "queued");
    await eventually("queued", () => herd.stats().pools[0]!.queued === 1);
    await expect(herd.acquire("w", "third")).rejects.toMatchObject({ code: "resource_exhausted" });
    await herd.release("holder");
    await expect(queued).resolves.toMatchObject({ id: "queued" });
  });
});

describe("release", () => {
  it("returns the worker to the pool when reuse is on", async () => {
    const herd = await fx.start({ max: 1, reuse: true });
    const first = await herd.acquire("w", "one");
    await herd.release("one");
    expect(pidAlive(first.workerPid)).toBe(true);
    const second = await herd.acquire("w", "two");
    expect(second.workerPid).toBe(first.workerPid);
  });

  it("kills the whole tree, setsid grandchildren included, and keeps min warm when reuse is off", async () => {
    const herd = await fx.start({ max: 2, min: 1, reuse: false });
    const s = await herd.acquire("w", "one");
    const { pids } = await getJson<{ pids: number[] }>(
      s.workerAddress,
      "/control/spawn?count=3&setsid=1",
      { method: "POST" },
    );
    const plain = await getJson<{ pids: number[] }>(s.workerAddress, "/control/spawn?count=2", {
      method: "POST",
    });
    const tree = [s.workerPid, ...pids, ...plain.pids];
    expect(tree.every(pidAlive)).toBe(true);
    await herd.release("one");
    // release resolves only once the tree is gone: no waiting here.
    expect(tree.filter(pidAlive)).toEqual([]);
    await eventually("a fresh warm worker", () => herd.stats().pools[0]!.workersIdle === 1);
  });

  it("leaves no cgroup behind once closed, though reaped setsid grandchildren linger as zombies", async ({
    skip,
  }) => {
    const herd = await fx.start({ max: 1, reuse: false });
    const s = await herd.acquire("w", "one");
    const generation = generationOf(s.workerPid);
    const mine = () => cgroupDirs(generation);
    if (generation === "" || mine().length === 0) skip("no writable cgroup hierarchy on this host");
    await getJson(s.workerAddress, "/control/spawn?count=3&setsid=1", { method: "POST" });
    await herd.release("one");
    await herd.close();
    expect(mine()).toEqual([]);
  });

  it("kills the tree on kill: true even when the pool reuses workers", async () => {
    const herd = await fx.start({ max: 1, reuse: true });
    const s = await herd.acquire("w", "one");
    await herd.release("one", { kill: true });
    expect(pidAlive(s.workerPid)).toBe(false);
  });

  it("kills at once on release, but grants stop_grace on shutdown to a worker ignoring SIGTERM", async () => {
    const stubborn = {
      max: 1,
      reuse: false,
      // Far longer than a kill takes even on a loaded machine, so the two paths cannot blur.
      stopGraceMs: 2000,
      env: { WORKER_IGNORE_SIGTERM: "1" },
    };
    const herd = await fx.start(stubborn);
    const s = await herd.acquire("w", "stubborn");
    let started = Date.now();
    await herd.release("stubborn");
    expect(Date.now() - started).toBeLessThan(2000);
    expect(pidAlive(s.workerPid)).toBe(false);
    const other = await fx.start(stubborn);
    const t = await other.acquire("w", "stubborn2");
    started = Date.now();
    await other.close();
    expect(Date.now() - started).toBeGreaterThanOrEqual(1950);
    expect(pidAlive(t.workerPid)).toBe(false);
  });
});

describe("failures", () => {
  it("reports a crash as a lost session with exit code and stderr, leaving other sessions alone", async () => {
    const herd = await fx.start({ max: 2, min: 2 });
    const rec = recordEvents(herd);
    const a = await herd.acquire("w", "victim");
    const b = await herd.acquire("w", "bystander");
    await fetch(`http://${a.workerAddress}/control/crash?code=7&respond=1`, { method: "POST" });
    const lost = await eventually("session_lost", () =>
      rec.events.find((e) => e.type === "session_lost" && e.sessionId === "victim"),
    );
    expect(lost.reason).toContain("exited with code 7");
    expect(lost.exit).toMatchObject({ code: 7, oom: false });
    expect(lost.exit?.stderrTail.join("\n")).toContain("fatal: crash requested");
    expect(herd.lookup("victim")).toBeUndefined();
    expect(await getJson<WhoAmI>(b.workerAddress, "/whoami")).toMatchObject({ pid: b.workerPid });
    await eventually("replacement keeps min", () => herd.stats().pools[0]!.workersTotal === 2);
    rec.stop();
  });

  it("ends a session whose worker fails health checks, as lost", async () => {
    const herd = await fx.start({ max: 1, healthIntervalMs: 50, healthFailures: 2 });
    const rec = recordEvents(herd);
    const s = await herd.acquire("w", "sick");
    await fetch(`http://${s.workerAddress}/control/fail-health`, { method: "POST" });
    const lost = await eventually("session_lost", () =>
      rec.events.find((e) => e.type === "session_lost"),
    );
    expect(lost.reason).toMatch(/health check failed 2 times: GET \/health returned 500/);
    expect(rec.events.some((e) => e.type === "worker_unhealthy" && e.workerId === s.workerId)).toBe(
      true,
    );
    await eventually("worker gone", () => !pidAlive(s.workerPid));
    rec.stop();
  });

  it("kills a memory hog at its limit and reports OOM", async ({ skip }) => {
    const herd = await fx.start({ max: 1, limits: { memoryBytes: 96 * 1024 * 1024 } });
    if (herd.guaranteesOff.some((g) => g.startsWith("memory")))
      skip("no memory cgroup on this host");
    const rec = recordEvents(herd);
    const s = await herd.acquire("w", "hog");
    await fetch(`http://${s.workerAddress}/control/eat?mb=400`, { method: "POST" }).catch(() => {});
    const lost = await eventually("session_lost", () =>
      rec.events.find((e) => e.type === "session_lost"),
    );
    expect(lost.exit?.oom).toBe(true);
    expect(lost.reason).toMatch(/OOM/);
    rec.stop();
  });

  it("never routes to a stranger that took the worker's port first, and says so", async () => {
    // Each worker asks this test process, outside its tree, to take its PORT before it binds.
    const squatted: number[] = [];
    const strangers: Server[] = [];
    const broker = createServer((req, res) => {
      const port = Number(new URL(req.url!, "http://x").searchParams.get("port"));
      const stranger = createServer((_q, r) => r.end("not your worker")).listen(port, "127.0.0.1");
      strangers.push(stranger);
      stranger.once("listening", () => {
        squatted.push(port);
        res.end();
      });
    }).listen(0, "127.0.0.1");
    await once(broker, "listening");
    const at = `http://127.0.0.1:${(broker.address() as AddressInfo).port}`;
    try {
      const herd = await fx.start({
        max: 1,
        command: [
          process.execPath,
          "-e",
          `fetch("${at}/squat?port=" + process.env.PORT).then(() => setInterval(() => {}, 1e6))`,
        ],
      });
      await expect(herd.acquire("w", "s")).rejects.toThrow(/port \d+ is served by another program/);
      expect(squatted.length).toBeGreaterThan(1); // it retried on a fresh port
      expect(herd.stats().pools[0]!.workersTotal).toBe(0);
    } finally {
      for (const server of [broker, ...strangers]) server.close();
    }
  });

  it("fails an acquire clearly when the command does not exist", async () => {
    const herd = await fx.start({ max: 1 });
    // A second pool whose command is wrong: Herd.start with min 0 succeeds, acquire says why.
    const broken = await fx.start({ name: "broken", command: ["/nonexistent/worker"], max: 1 });
    await expect(broken.acquire("broken", "s")).rejects.toThrow(/command not found.*nonexistent/);
    expect(herd.stats().pools[0]!.workersTotal).toBe(0);
  });

  it("reports a worker that exits during start with its stderr, and one that never gets ready", async () => {
    const herd = await fx.start(
      { name: "exits", max: 1, env: { WORKER_EXIT_ON_START: "3" } },
      { name: "slow", max: 1, startTimeoutMs: 300, env: { WORKER_START_DELAY_MS: "5000" } },
    );
    await expect(herd.acquire("exits", "s")).rejects.toMatchObject({
      code: "unavailable",
      message: expect.stringMatching(/failed to start: exited with code 3/),
    });
    await expect(herd.acquire("slow", "s")).rejects.toMatchObject({
      code: "unavailable",
      message: expect.stringMatching(/not ready within 300 ms/),
    });
  });

  it("refuses to start a daemon whose min workers cannot start", async () => {
    await expect(fx.start({ min: 1, env: { WORKER_EXIT_ON_START: "4" } })).rejects.toThrow(
      /exited with code 4/,
    );
  });
});

describe("preempt_idle", () => {
  it("at max, a waiter takes the worker of the session idle longest with no open connection", async () => {
    const herd = await fx.start({ max: 2, preemptIdleMs: 300, reuse: true });
    const rec = recordEvents(herd);
    const sleepy = await herd.acquire("w", "sleepy");
    await herd.acquire("w", "held");
    const lease = herd.lease("held", "websocket");
    const eager = await herd.acquire("w", "eager", { waitMs: 10_000 });
    expect(eager.workerPid).toBe(sleepy.workerPid);
    // Timers never fire early: the session was idle at least preempt_idle.
    expect(Date.now() - sleepy.lastActiveAt.getTime()).toBeGreaterThanOrEqual(300);
    expect(herd.lookup("sleepy")).toBeUndefined();
    const ended = rec.events.find((e) => e.sessionId === "sleepy" && e.type === "session_expired");
    expect(ended?.reason).toBe("preempted");
    // Sessions with an open connection are never preempted, however long the wait.
    const eagerLease = herd.lease("eager", "http");
    await expect(herd.acquire("w", "late", { waitMs: 800 })).rejects.toMatchObject({
      code: "deadline_exceeded",
    });
    expect(herd.lookup("held")).toBeDefined();
    expect(herd.lookup("eager")).toBeDefined();
    lease.close();
    eagerLease.close();
    rec.stop();
  });

  it("with reuse: false the preempted tree dies and a fresh worker serves the waiter", async () => {
    const herd = await fx.start({ max: 1, preemptIdleMs: 200, reuse: false });
    const old = await herd.acquire("w", "old");
    const next = await herd.acquire("w", "next", { waitMs: 10_000 });
    expect(next.workerPid).not.toBe(old.workerPid);
    expect(pidAlive(old.workerPid)).toBe(false);
  });

  it("is off by default: a waiter at max waits for its deadline", async () => {
    const herd = await fx.start({ max: 1 });
    await herd.acquire("w", "idle-forever");
    await expect(herd.acquire("w", "waiting", { waitMs: 700 })).rejects.toMatchObject({
      code: "deadline_exceeded",
    });
    expect(herd.lookup("idle-forever")).toBeDefined();
  });
});

describe("reconnect window", () => {
  it("a gone holder opens the window only when no other hold is attached", async () => {
    const herd = await fx.start({ max: 1, disconnectGraceMs: 60_000 });
    await herd.acquire("w", "held");
    const old = herd.lease("held", "hold");
    const reattached = herd.lease("held", "hold");
    old.close();
    herd.clientGone("held"); // the old stream's end arrives after the re-attach
    expect(herd.lookup("held")?.reconnectDeadline).toBeUndefined();
    reattached.close();
    herd.clientGone("held");
    expect(herd.lookup("held")?.reconnectDeadline).toBeDefined();
    herd.lease("held", "hold"); // back within the window
    expect(herd.lookup("held")?.reconnectDeadline).toBeUndefined();
  });
});

describe("clean reuse", () => {
  it("kills every process a session left before its reused worker serves the next one", async () => {
    const herd = await fx.start({ max: 1, reuse: true });
    const first = await herd.acquire("w", "first");
    // 40 double-forked, setsid'd grandchildren: a fork bomb's leftovers, outside the worker's
    // process group and no longer its descendants.
    const res = await fetch(`http://${first.workerAddress}/control/spawn?count=40&setsid=1`, {
      method: "POST",
    });
    const { pids } = (await res.json()) as { pids: number[] };
    expect(pids.filter(pidAlive)).toHaveLength(40);
    await herd.release("first");
    const second = await herd.acquire("w", "second");
    expect(second.workerPid).toBe(first.workerPid);
    expect(pidAlive(second.workerPid)).toBe(true);
    expect(pids.filter(pidAlive)).toEqual([]);
    // The worker itself is untouched and serves.
    expect(await getJson<WhoAmI>(second.workerAddress, "/whoami")).toMatchObject({
      pid: first.workerPid,
    });
  });
});

describe("time", () => {
  it("expires an idle session, but never one with an open lease", async () => {
    const herd = await fx.start({ max: 2, idleTtlMs: 150 });
    const rec = recordEvents(herd);
    await herd.acquire("w", "idle");
    await herd.acquire("w", "busy");
    const lease = herd.lease("busy", "http");
    const expired = await eventually("idle session expired", () =>
      rec.events.find((e) => e.type === "session_expired" && e.sessionId === "idle"),
    );
    expect(expired.reason).toBe("idle_timeout");
    await new Promise((r) => setTimeout(r, 400));
    expect(herd.lookup("busy")?.connections).toBe(1);
    lease.close();
    await eventually("busy session expired after its lease closed", () => !herd.lookup("busy"));
    rec.stop();
  });

  it("keeps a touched session alive past its ttl", async () => {
    const herd = await fx.start({ max: 1, idleTtlMs: 200 });
    await herd.acquire("w", "active");
    for (let i = 0; i < 6; i++) {
      await new Promise((r) => setTimeout(r, 80));
      herd.touch("active");
    }
    expect(herd.lookup("active")).toBeDefined();
  });

  it("ends a session at max_lifetime even while busy", async () => {
    const herd = await fx.start({ max: 1, maxLifetimeMs: 250 });
    const rec = recordEvents(herd);
    const s = await herd.acquire("w", "mortal");
    const lease = herd.lease("mortal", "http");
    const expired = await eventually("max_lifetime", () =>
      rec.events.find((e) => e.type === "session_expired"),
    );
    expect(expired.reason).toBe("max_lifetime");
    // Timers and Date tick in whole milliseconds: allow one tick of rounding either way.
    expect(expired.time.getTime() - s.createdAt.getTime()).toBeGreaterThanOrEqual(249);
    expect(lease.ended.aborted).toBe(true);
    expect(lease.ended.reason).toMatchObject({ kind: "expired", reason: "max_lifetime" });
    rec.stop();
  });

  it("releases on the last data lease when release_on_disconnect is set", async () => {
    const herd = await fx.start({ max: 1, releaseOnDisconnect: true, reuse: false });
    const s = await herd.acquire("w", "tab");
    const one = herd.lease("tab", "http");
    const two = herd.lease("tab", "http");
    one.close();
    expect(herd.lookup("tab")).toBeDefined();
    two.close();
    await eventually("tree gone", () => !herd.lookup("tab") && !pidAlive(s.workerPid));
  });

  it("retires surplus idle workers above min", async () => {
    const herd = await fx.start({ max: 3, min: 1, idleWorkerTtlMs: 150 });
    await Promise.all(["a", "b", "c"].map((id) => herd.acquire("w", id)));
    expect(herd.stats().pools[0]!.workersTotal).toBe(3);
    await Promise.all(["a", "b", "c"].map((id) => herd.release(id)));
    await eventually("back to min", () => herd.stats().pools[0]!.workersTotal === 1);
  });
});

describe("events and stats", () => {
  it("streams every lifecycle change in revision order and resumes from a revision", async () => {
    const herd = await fx.start({ max: 1, reuse: false });
    await herd.acquire("w", "e0");
    await herd.release("e0");
    const start = herd.revision();
    expect(start).toBeGreaterThan(0);
    await herd.acquire("w", "e1");
    await herd.release("e1");
    const seen: HerdEvent[] = [];
    const sub = herd.subscribe({ sinceRevision: start, filter: { pool: "w" } });
    for await (const e of sub) {
      seen.push(e);
      if (e.type === "worker_stopped") break;
    }
    const types = seen.map((e) => e.type);
    expect(types).toEqual(
      expect.arrayContaining([
        "worker_started",
        "session_acquired",
        "session_released",
        "worker_stopped",
      ]),
    );
    const revisions = seen.map((e) => e.revision);
    expect(revisions).toEqual([...revisions].sort((x, y) => x - y));
    expect(new Set(revisions).size).toBe(revisions.length);
    const filtered = herd.subscribe({ sinceRevision: start, filter: { sessionId: "e1" } });
    const first = await filtered[Symbol.asyncIterator]().next();
    expect(first.value).toMatchObject({ type: "session_acquired", sessionId: "e1" });
    filtered.close();
  });

  it("reports per-pool and node stats", async () => {
    const herd = await fx.start({ name: "p", min: 1, max: 4 });
    await herd.acquire("p", "s");
    const stats = herd.stats("p");
    expect(stats.pools).toEqual([
      {
        name: "p",
        workersTotal: 1,
        workersIdle: 0,
        workersBusy: 1,
        workersStarting: 0,
        sessions: 1,
        queued: 0,
        min: 1,
        max: 4,
        crashStreak: 0,
        restartBackoffMs: 0,
        // In-process, without a sandbox launcher: the report says so.
        containment: [expect.objectContaining({ key: "isolation", state: "unavailable" })],
        // No warm: auto: no target; the boot time is measured all the same.
        warmTarget: 0,
        arrivalRate: 0,
        bootMs: expect.any(Number),
      },
    ]);
    expect(stats.pools[0]!.bootMs).toBeGreaterThan(0);
    expect(stats.node.memoryTotalBytes).toBeGreaterThan(stats.node.memoryAvailableBytes);
    expect(stats.node.cpuIdle).toBeGreaterThanOrEqual(0);
    expect(stats.node.cpuIdle).toBeLessThanOrEqual(1);
  });
});
