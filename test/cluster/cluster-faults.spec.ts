// Cluster faults found by chaos runs (issues 24 and 25), each pinned by a test that failed on
// the code before its fix: start-up readiness, shutdown ordering, Redis restarts shorter than
// the lease, fencing taken for worker crashes, a forward to an owner whose session just ended,
// and the listener warning of many holds. Each test starts its own cluster and proves, at the
// end, that every process is gone.

import { spawnSync } from "node:child_process";
import { setMaxListeners } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import { createClient } from "redis";
import { afterEach, describe, expect, it } from "vitest";
import { SessionEventType } from "../../gen/herd/v1/herd_pb.ts";
import { type Daemon, HERD_BIN } from "../helpers/daemon.ts";
import { eventually } from "../helpers/herd.ts";
import { pidAlive } from "../helpers/processes.ts";
import { startCluster, type TestCluster, workerPool } from "./cluster-harness.ts";

let cluster: TestCluster | undefined;
afterEach(async () => {
  await cluster?.cleanup();
  cluster = undefined;
});

type LogLine = { msg?: string; reason?: string; session?: string; end?: string; err?: string };

/** The daemon's JSON log lines so far. */
function log(d: Daemon): LogLine[] {
  return d
    .stdout()
    .split("\n")
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as LogLine];
      } catch {
        return [];
      }
    });
}

async function whoami(d: Daemon, id: string): Promise<{ status: number; pid?: number }> {
  try {
    const res = await fetch(`${d.dataUrl}/whoami`, { headers: { "X-Session-ID": id } });
    const body = (await res.json()) as { pid?: number };
    return { status: res.status, pid: body.pid };
  } catch {
    return { status: 0 };
  }
}

async function redisRecordOwner(c: TestCluster, id: string): Promise<string | undefined> {
  const r = createClient({ url: c.redis.url });
  r.on("error", () => {});
  try {
    await r.connect();
    return (await r.hGet(`herd:s:${id}`, "node")) ?? undefined;
  } catch {
    return undefined;
  } finally {
    if (r.isOpen) r.destroy();
  }
}

describe("cluster faults", () => {
  it("ready means ready: right after `herd is ready`, cluster status lists the node (issue 24 item 2)", async () => {
    cluster = await startCluster([{ node: "node-a" }]);
    const c = cluster;
    // A second node: startDaemon returns as soon as it logged `herd is ready` (and /healthz
    // answered). Its very first answers must already be the cluster's.
    const b = await c.addNode({ node: "node-b" });
    const cli = spawnSync(
      process.execPath,
      [HERD_BIN, "cluster", "status", "--addr", b.controlUrl],
      {
        encoding: "utf8",
      },
    );
    expect(cli.status, cli.stderr).toBe(0);
    expect(cli.stdout).not.toMatch(/not part of a cluster/);
    expect(cli.stdout).toContain("node-a");
    expect(cli.stdout).toContain("node-b");
    const stats = await c.client(b).getStats({});
    expect(stats.clusterNode).toBe("node-b");
  });

  it("SIGTERM: the stopping node's last events reach Redis; no false 'Redis unreachable' (issue 24 item 3)", async () => {
    cluster = await startCluster(["a", "b"].map((n) => ({ node: `node-${n}` })));
    const c = cluster;
    const [a, b] = c.nodes as [Daemon, Daemon];
    const ids = ["t-1", "t-2", "t-3"];
    for (const id of ids) {
      const { session } = await c.client(a).acquireSession({ pool: "w", sessionId: id });
      expect(session?.node).toBe("node-a");
    }
    const watch = new AbortController();
    const ended: { id: string; reason: string }[] = [];
    const watching = (async () => {
      for await (const e of c.client(b).watchSessions({}, { signal: watch.signal })) {
        const ends =
          e.type >= SessionEventType.SESSION_RELEASED && e.type <= SessionEventType.SESSION_LOST;
        if (ends && ids.includes(e.sessionId)) {
          ended.push({ id: e.sessionId, reason: e.reason });
        }
      }
    })().catch(() => {});
    await sleep(200);
    expect((await a.stop()).code).toBe(0);
    const lines = log(a);
    const false_ = lines.filter((l) => /events not shared|unreachable/.test(`${l.msg} ${l.err}`));
    expect(false_, "a false 'Redis unreachable' at shutdown").toEqual([]);
    // b learns each end from a's own events (not by reaping a's records as node_lost).
    await eventually("b sees every session end", () => (ended.length >= 3 ? true : undefined));
    expect(ended.map((e) => e.reason)).not.toContain("node_lost");
    // a left: its record went at once rather than after its lease.
    expect(await redisRecordOwner(c, "t-1")).toBeUndefined();
    watch.abort();
    await watching;
  });

  it("a Redis restart shorter than the lease costs no session, with traffic during it (issue 25 fault 3)", async () => {
    const lease = "2s";
    cluster = await startCluster(
      ["a", "b"].map((n) => ({ node: `node-${n}`, lease, pools: { w: workerPool({ max: 8 }) } })),
    );
    const c = cluster;
    const [a, b] = c.nodes as [Daemon, Daemon];
    const ids = Array.from({ length: 12 }, (_, i) => `r-${i}`);
    const pids = new Map<string, number>();
    for (const [i, id] of ids.entries()) {
      const d = i % 2 === 0 ? a : b;
      const { session } = await c.client(d).acquireSession({ pool: "w", sessionId: id });
      pids.set(id, session!.workerPid);
    }
    // Clients keep calling every session through one node during the outages.
    let calling = true;
    const traffic = (async () => {
      while (calling) {
        await Promise.all(ids.map((id) => whoami(a, id)));
        await sleep(20);
      }
    })();
    const outages: number[] = [];
    try {
      for (let trial = 0; trial < 3; trial++) {
        const downAt = Date.now();
        const down = await c.redisDown();
        await sleep(300);
        await down.up();
        outages.push(Date.now() - downAt);
        // Converged: every session is registered again in the new, empty Redis.
        await eventually(
          `trial ${trial}: every session re-registered`,
          async () => {
            for (const id of ids) if (!(await redisRecordOwner(c, id))) return false;
            return true;
          },
          20_000,
        );
      }
    } finally {
      calling = false;
      await traffic;
    }
    const lost = ids.filter((id) => !pidAlive(pids.get(id)!));
    expect(lost, `sessions lost to outages of ${outages.join(", ")} ms (lease ${lease})`).toEqual(
      [],
    );
    for (const d of [a, b]) {
      expect(log(d).filter((l) => /fencing/.test(l.msg ?? ""))).toEqual([]);
    }
    for (const id of ids) {
      const r = await whoami(b, id);
      expect(r, id).toEqual({ status: 200, pid: pids.get(id) });
    }
  });

  it("fencing ends sessions as fenced, never as worker crashes, frozen daemon or not (issue 25 fault 4)", async () => {
    cluster = await startCluster([{ node: "node-a", lease: "2s" }]);
    const c = cluster;
    const a = c.nodes[0]!;
    // How this node loses Redis: killed (connections reset, renewals fail at once), frozen
    // (SIGSTOP: renewals hang unanswered), or the daemon itself frozen past its deadline.
    const fencedPhase = async (
      phase: string,
      how: "redis-killed" | "redis-frozen" | "daemon-frozen",
    ) => {
      const ids = [1, 2, 3].map((i) => `${phase}-${i}`);
      const pids: number[] = [];
      for (const id of ids) {
        const got = await eventually(`${phase}: acquire ${id}`, () =>
          c
            .client(a)
            .acquireSession({ pool: "w", sessionId: id })
            .catch(() => undefined),
        );
        pids.push(got.session!.workerPid);
      }
      // Frozen: the daemon cannot fence itself, so the watchdog kills; on waking, the daemon
      // must still call those deaths fencing.
      const frozen = how === "daemon-frozen";
      if (frozen) process.kill(a.pid, "SIGSTOP");
      const freeze = async () => {
        process.kill(c.redis.pid, "SIGSTOP");
        return { up: async () => void process.kill(c.redis.pid, "SIGCONT") };
      };
      const down = how === "redis-frozen" ? await freeze() : await c.redisDown();
      try {
        await eventually(`${phase}: every session's worker is killed`, () =>
          pids.every((p) => !pidAlive(p)) ? true : undefined,
        );
      } finally {
        if (frozen) process.kill(a.pid, "SIGCONT");
      }
      try {
        await eventually(`${phase}: the end of every session is logged`, () =>
          log(a).filter((l) => l.msg === "session lost" && ids.includes(l.session ?? "")).length >=
          3
            ? true
            : undefined,
        );
      } finally {
        await down.up();
      }
      const ends = log(a).filter((l) => l.msg === "session lost" && ids.includes(l.session ?? ""));
      expect(
        ends.map((l) => l.reason?.replace(/:.*/, "")),
        JSON.stringify(ends),
      ).toEqual(["fenced", "fenced", "fenced"]);
      expect(log(a).filter((l) => /keep crashing/.test(l.msg ?? ""))).toEqual([]);
    };
    await fencedPhase("redis-frozen", "redis-frozen");
    await fencedPhase("daemon-frozen", "daemon-frozen");
    await fencedPhase("redis-killed", "redis-killed");
    const stats = await c.client(a).getStats({ pool: "w" });
    expect(stats.pools[0]!.crashStreak).toBe(0);
  });

  it("a forward to an owner that has just ended the session answers 502 with the reason, never a 404 (issue 25 fault 5)", async () => {
    cluster = await startCluster(["a", "b"].map((n) => ({ node: `node-${n}`, lease: "10s" })));
    const c = cluster;
    const [a, b] = c.nodes as [Daemon, Daemon];
    await c.client(a).acquireSession({ pool: "w", sessionId: "gone" });
    await eventually("b routes it", async () => (await whoami(b, "gone")).status === 200);
    // The race, held open: with Redis away, a ends the session and b cannot hear of it, so b
    // still forwards to a, which no longer runs it.
    const down = await c.redisDown();
    try {
      await c.client(a).releaseSession({ sessionId: "gone", kill: true });
      const res = await fetch(`${b.dataUrl}/whoami`, { headers: { "X-Session-ID": "gone" } });
      const body = (await res.json()) as { code: string; message: string };
      expect(res.status, JSON.stringify(body)).toBe(502);
      expect(body.message).toMatch(/"gone" ended/);
    } finally {
      await down.up();
    }
  });

  it("an owner dying mid-request: the forwarding node answers 502, not a bare close (issue 25 fault 5)", async () => {
    cluster = await startCluster(["a", "b"].map((n) => ({ node: `node-${n}`, lease: "10s" })));
    const c = cluster;
    const [a, b] = c.nodes as [Daemon, Daemon];
    await c.client(a).acquireSession({ pool: "w", sessionId: "dies" });
    await eventually("b routes it", async () => (await whoami(b, "dies")).status === 200);
    const pending = fetch(`${b.dataUrl}/sleep?ms=5000`, { headers: { "X-Session-ID": "dies" } });
    await sleep(300);
    await a.kill();
    const res = await pending.then(
      (r) => r,
      (err: unknown) => err as Error,
    );
    expect(res, "the client got an answer").not.toBeInstanceOf(Error);
    const r = res as Response;
    const body = (await r.json()) as { message: string };
    expect(r.status).toBe(502);
    expect(body.message).toMatch(/node node-a, which runs session dies, did not answer/);
  });

  it("11 or more HoldSession streams print no MaxListenersExceededWarning (issue 25 fault 6)", async () => {
    cluster = await startCluster(
      ["a", "b"].map((n) => ({ node: `node-${n}`, pools: { w: workerPool({ max: 12 }) } })),
    );
    const c = cluster;
    const [a, b] = c.nodes as [Daemon, Daemon];
    const stop = new AbortController();
    setMaxListeners(0, stop.signal); // the test's own 12 streams share it
    const holds = Array.from({ length: 12 }, (_, i) =>
      (async () => {
        // Every one on a (its sessions run there: it has room), which then has 12 holds.
        for await (const _ of c
          .client(a)
          .holdSession({ pool: "w", sessionId: `h-${i}` }, { signal: stop.signal })) {
          // heartbeats
        }
      })().catch(() => {}),
    );
    try {
      // Twelve cold starts at once: at load 20 on two cores that is well past the usual 15 s.
      await eventually(
        "12 sessions held",
        async () => {
          const list = await c.client(a).listSessions({});
          return list.sessions.filter((x) => x.connections >= 1).length >= 12 ? true : undefined;
        },
        90_000,
      );
    } finally {
      stop.abort();
      await Promise.all(holds);
    }
    for (const d of [a, b]) {
      expect(`${d.stdout()}${d.stderr()}`).not.toMatch(/MaxListenersExceeded/);
    }
  });
});
