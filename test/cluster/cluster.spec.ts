// herd cluster: several real daemons on one real redis-server behave as one herd.
// Each test starts its own cluster and proves, at the end, that every process is gone.

import { spawnSync } from "node:child_process";
import { Agent, request } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { createClient } from "redis";
import { afterEach, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { SessionEventType } from "../../gen/herd/v1/herd_pb.ts";
import { PeerAuth, PeerClient } from "../../src/cluster/index.ts";
import { HERD_BIN } from "../helpers/daemon.ts";
import { eventually } from "../helpers/herd.ts";
import { pidAlive } from "../helpers/processes.ts";
import { SECRET, startCluster, type TestCluster, unsigned, workerPool } from "./cluster-harness.ts";

let cluster: TestCluster | undefined;
afterEach(async () => {
  await cluster?.cleanup();
  cluster = undefined;
});

async function three(lease = "4s"): Promise<TestCluster> {
  cluster = await startCluster(["a", "b", "c"].map((n) => ({ node: `node-${n}`, lease })));
  return cluster;
}

async function get(dataUrl: string, path: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${dataUrl}${path}`, { headers });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe("herd cluster", () => {
  it("one id, one worker, cluster-wide: 3 nodes acquire the same new id at once", async () => {
    const c = await three();
    for (const round of [1, 2, 3]) {
      const id = `same-${round}`;
      // Control-plane acquires on every node and data-plane auto-acquires on every node.
      const results = await Promise.all([
        ...c.nodes.map((d) => c.client(d).acquireSession({ pool: "w", sessionId: id })),
        ...c.nodes.map((d) => get(d.dataUrl, "/whoami", { "X-Session-ID": id })),
      ]);
      const sessions = results
        .slice(0, 3)
        .map((r) => (r as { session: { workerPid: number; node: string } }).session);
      const hits = results.slice(3) as { status: number; body: { pid: number } }[];
      const pids = new Set([...sessions.map((s) => s.workerPid), ...hits.map((h) => h.body.pid)]);
      expect(hits.map((h) => h.status)).toEqual([200, 200, 200]);
      expect(pids.size, `round ${round}: one worker for ${id}`).toBe(1);
      expect(new Set(sessions.map((s) => s.node)).size).toBe(1);
      const [pid] = [...pids];
      // Exactly one worker process serves it, in one node's tree; and across the cluster only
      // one worker was started per id (each node may also hold one prepared, idle spare).
      const owners = c.nodes.filter((d) => c.workers(d).includes(pid!));
      expect(owners).toHaveLength(1);
      const stats = await Promise.all(c.nodes.map((d) => c.client(d).getStats({ pool: "w" })));
      const total = stats.reduce((n, s) => n + s.pools[0]!.workersTotal, 0);
      expect(total, `workers started after ${round} ids`).toBe(round);
    }
  });

  it("any node routes any session; control calls act on the owner; forged peers are refused", async () => {
    const c = await three();
    const [a, b, cc] = c.nodes as [(typeof c.nodes)[0], (typeof c.nodes)[0], (typeof c.nodes)[0]];
    const { session } = await c.client(a).acquireSession({ pool: "w", sessionId: "routed" });
    expect(session?.node).toBe("node-a");
    const pid = session!.workerPid;
    // HTTP through b and c (header and path prefix) reaches a's worker, whose counter moves on.
    const counters: number[] = [];
    for (const [d, path, headers] of [
      [b, "/whoami", { "X-Session-ID": "routed" }],
      [cc, "/s/routed/whoami", {}],
      [b, "/whoami?herd_session=routed", {}],
    ] as const) {
      const r = await get(d.dataUrl, path, headers);
      expect(r.status).toBe(200);
      expect(r.body.pid).toBe(pid);
      counters.push(r.body.counter as number);
    }
    expect(counters).toEqual([...counters].sort((x, y) => x - y));
    // Streaming through a non-owner.
    const sse = await fetch(`${b.dataUrl}/sse?n=3&interval=20`, {
      headers: { "X-Session-ID": "routed" },
    });
    expect(await sse.text()).toContain("data: 2");
    // ListSessions on another node names the owner.
    await eventually("b lists the session", async () => {
      const list = await c.client(b).listSessions({});
      return list.sessions.find((s) => s.sessionId === "routed" && s.node === "node-a");
    });
    // GetStats on any node: a row per node and cluster totals; `herd cluster status` prints them.
    const stats = await eventually("b's stats count a's session", async () => {
      const st = await c.client(b).getStats({});
      return st.clusterPools.find((p) => p.name === "w")?.sessions === 1 ? st : undefined;
    });
    expect(stats.clusterNodes.map((n) => n.node).sort()).toEqual(["node-a", "node-b", "node-c"]);
    const cli = spawnSync(
      process.execPath,
      [HERD_BIN, "cluster", "status", "--addr", cc.controlUrl],
      { encoding: "utf8" },
    );
    expect(cli.status, cli.stderr).toBe(0);
    for (const n of ["node-a", "node-b", "node-c"]) expect(cli.stdout).toContain(n);
    expect(cli.stdout).toMatch(/CLUSTER POOL/);
    // A forged node-to-node credential: refused on the data plane and the control plane.
    const forged = await get(a.dataUrl, "/whoami", {
      "X-Session-ID": "routed",
      "X-Herd-Peer": `node-b.${Date.now()}.${"A".repeat(43)}`,
    });
    expect(forged.status).toBe(401);
    const err = await c
      .client(a)
      .releaseSession({ sessionId: "routed" }, { headers: { "x-herd-peer": "node-b.1.x" } })
      .catch((e: unknown) => ConnectError.from(e));
    expect((err as ConnectError).code).toBe(Code.Unauthenticated);
    // Release on c ends the session on a.
    const released = await c.client(cc).releaseSession({ sessionId: "routed", kill: true });
    expect(released.session?.node).toBe("node-a");
    await eventually("a's worker is gone", () => !pidAlive(pid));
    const after = await c
      .client(b)
      .releaseSession({ sessionId: "routed" })
      .catch((e: unknown) => ConnectError.from(e));
    expect((after as ConnectError).code).toBe(Code.NotFound);
  });

  it("node loss: kill -9 a node; survivors report its sessions lost (node_lost) and forget them", async () => {
    const c = await three("2s");
    const [a, b] = c.nodes as [(typeof c.nodes)[0], (typeof c.nodes)[0]];
    const { session } = await c.client(a).acquireSession({ pool: "w", sessionId: "doomed" });
    expect(session?.node).toBe("node-a");
    const watch = new AbortController();
    const seen: { type: number; reason: string; node: string; id: string }[] = [];
    const watching = (async () => {
      for await (const e of c.client(b).watchSessions({}, { signal: watch.signal })) {
        seen.push({ type: e.type, reason: e.reason, node: e.node, id: e.sessionId });
      }
    })().catch(() => {});
    await sleep(200);
    const killedAt = Date.now();
    await a.kill();
    const lost = await eventually(
      "node_lost on b",
      () => seen.find((e) => e.id === "doomed" && e.type === SessionEventType.SESSION_LOST),
      15_000,
    );
    expect(lost).toMatchObject({ reason: "node_lost", node: "node-a" });
    // The bound (2 × lease) is measured in bench/; here only that it happened, and roughly.
    expect(Date.now() - killedAt).toBeLessThan(15_000);
    await eventually("b forgets it", async () => {
      const list = await c.client(b).listSessions({});
      return !list.sessions.some((s) => s.sessionId === "doomed");
    });
    // The id is free again: a new acquire places it on a survivor.
    const again = await c.client(b).acquireSession({ pool: "w", sessionId: "doomed" });
    expect(["node-b", "node-c"]).toContain(again.session?.node);
    watch.abort();
    await watching;
    await eventually("a's worker died with it", () => !pidAlive(session!.workerPid));
  });

  it("partition: a SIGSTOPped node's sessions die before its lease passes; on SIGCONT it never serves an id owned elsewhere", async () => {
    const c = await three("2s");
    const [a, b] = c.nodes as [(typeof c.nodes)[0], (typeof c.nodes)[0]];
    const { session } = await c.client(a).acquireSession({ pool: "w", sessionId: "split" });
    expect(session?.node).toBe("node-a");
    const first = session!.workerPid;
    let second: number | undefined;
    let overlap = 0;
    let polling = true;
    // Polls both process trees: never two live workers of "split" at one instant.
    const poller = (async () => {
      while (polling) {
        if (second !== undefined && pidAlive(first) && pidAlive(second)) overlap++;
        await sleep(5);
      }
    })();
    process.kill(a.pid, "SIGSTOP");
    try {
      // Keep asking b for the id until the cluster hands it to a survivor.
      const moved = await eventually(
        "the id moves to a survivor",
        async () => {
          const r = await c
            .client(b)
            .acquireSession({ pool: "w", sessionId: "split" })
            .catch(() => undefined);
          return r?.session?.node !== "node-a" ? r?.session : undefined;
        },
        20_000,
      );
      second = moved.workerPid;
      expect(pidAlive(first), "a's worker was killed while a was frozen").toBe(false);
    } finally {
      process.kill(a.pid, "SIGCONT");
    }
    // After waking, a routes the id to its new owner and never to anything of its own.
    for (let i = 0; i < 20; i++) {
      const r = await get(a.dataUrl, "/whoami", { "X-Session-ID": "split" });
      if (r.status === 200) expect(r.body.pid).toBe(second);
      await sleep(50);
    }
    await eventually("a serves the id through its owner", async () => {
      const r = await get(a.dataUrl, "/whoami", { "X-Session-ID": "split" });
      return r.status === 200 && r.body.pid === second;
    });
    polling = false;
    await poller;
    expect(overlap, "instants with two live workers for one id").toBe(0);
    expect(c.workers(a)).not.toContain(second);
  });

  it("Redis restart: established sessions keep serving, acquires fail UNAVAILABLE naming Redis, the cluster converges", async () => {
    cluster = await startCluster(["a", "b"].map((n) => ({ node: `node-${n}`, lease: "10s" })));
    const c = cluster;
    const [a, b] = c.nodes as [(typeof c.nodes)[0], (typeof c.nodes)[0]];
    const { session } = await c.client(a).acquireSession({ pool: "w", sessionId: "kept" });
    const pid = session!.workerPid;
    const down = await c.redisDown();
    // The established session keeps serving on its node.
    const r = await get(a.dataUrl, "/whoami", { "X-Session-ID": "kept" });
    expect(r).toMatchObject({ status: 200, body: { pid } });
    // A cluster-wide acquire fails at once, naming Redis.
    const err = ConnectError.from(
      await c
        .client(b)
        .acquireSession({ pool: "w", sessionId: "new-during-outage" })
        .catch((e: unknown) => e),
    );
    expect(err.code).toBe(Code.Unavailable);
    expect(err.rawMessage).toMatch(/Redis/);
    await down.up();
    // Converges without restarting herd: the live session is registered again in the new,
    // empty Redis (b routes it to a's worker) and new acquires work.
    await eventually(
      "a re-registers its live session",
      async () => {
        const r = createClient({ url: c.redis.url });
        r.on("error", () => {});
        try {
          await r.connect();
          return (await r.hGet("herd:s:kept", "node")) === "node-a";
        } catch {
          return false;
        } finally {
          if (r.isOpen) r.destroy();
        }
      },
      20_000,
    );
    await eventually(
      "b routes the surviving session again",
      async () => {
        const via = await get(b.dataUrl, "/whoami", { "X-Session-ID": "kept" }).catch(
          () => undefined,
        );
        return via?.status === 200 && via.body.pid === pid;
      },
      20_000,
    );
    const fresh = await eventually(
      "acquires work again",
      () =>
        c
          .client(b)
          .acquireSession({ pool: "w", sessionId: "after-outage" })
          .catch(() => undefined),
      20_000,
    );
    expect(fresh.session?.sessionId).toBe("after-outage");
    expect(pidAlive(pid)).toBe(true);
  });

  it("placement: here if free, else the node with most free capacity, never a node without the pool, else FIFO here", async () => {
    cluster = await startCluster([
      { node: "node-a", pools: { w: workerPool({ max: 1 }) } },
      { node: "node-b", pools: { w: workerPool({ max: 3 }) } },
      { node: "node-c", pools: { other: workerPool({ max: 4 }) } },
    ]);
    const c = cluster;
    const [a, b, cc] = c.nodes as [(typeof c.nodes)[0], (typeof c.nodes)[0], (typeof c.nodes)[0]];
    const r = createClient({ url: c.redis.url });
    r.on("error", () => {});
    await r.connect();
    const freeOn = async (node: string) =>
      JSON.parse(unsigned((await r.get(`herd:alive:${node}`)) ?? "{}")).pools?.w?.free as
        | number
        | undefined;
    try {
      const acquire = async (d: typeof a, id: string) =>
        (await c.client(d).acquireSession({ pool: "w", sessionId: id })).session!;
      expect((await acquire(a, "p1")).node).toBe("node-a");
      await eventually("a's record shows it full", async () => (await freeOn("node-a")) === 0);
      // a is full: the node with the most free capacity (b; c has no pool w) takes it.
      expect((await acquire(a, "p2")).node).toBe("node-b");
      // c does not run pool w: it places on b too.
      expect((await acquire(cc, "p3")).node).toBe("node-b");
      expect((await acquire(cc, "p4")).node).toBe("node-b");
      await eventually("b's record shows it full", async () => (await freeOn("node-b")) === 0);
      // Nobody has room: the acquire waits in a's FIFO queue, visible in a's GetStats.
      const waiting = c.client(a).acquireSession({ pool: "w", sessionId: "p5" });
      await eventually("a shows one queued acquire", async () => {
        const stats = await c.client(a).getStats({ pool: "w" });
        return stats.pools[0]!.queued === 1;
      });
      await c.client(b).releaseSession({ sessionId: "p1" });
      expect((await waiting).session?.node).toBe("node-a");
    } finally {
      r.destroy();
    }
  });

  it("placement prefers a warm worker on another node to a cold start here (issue 23)", async () => {
    cluster = await startCluster([
      { node: "node-a", pools: { w: workerPool({ max: 2 }) } },
      { node: "node-b", pools: { w: workerPool({ min: 1, max: 2 }) } },
    ]);
    const c = cluster;
    const [a] = c.nodes as [(typeof c.nodes)[0]];
    const idleOnB = async () => {
      const stats = await c.client(a).getStats({ pool: "w" });
      const b = stats.clusterNodes.find((n) => n.node === "node-b");
      return b?.pools[0]?.workersIdle;
    };
    await eventually("a knows b's idle worker", async () => ((await idleOnB()) ?? 0) > 0);
    const acquire = async (id: string) =>
      (await c.client(a).acquireSession({ pool: "w", sessionId: id })).session!;
    // a has room but no idle worker; b has one ready: b, not a cold start on a.
    expect((await acquire("warm-1")).node).toBe("node-b");
    // Once a knows b's worker is taken (b starts no other: min 1 is met by the busy one), a
    // cold start here is as good as one there, and here saves the hop.
    await eventually("a knows b has no idle worker", async () => (await idleOnB()) === 0);
    expect((await acquire("cold-1")).node).toBe("node-a");
  });

  it("placement: a burst of 3 × max acquires through one node fills every node (no pile-up on one)", async () => {
    const max = 3;
    cluster = await startCluster(
      ["a", "b", "c"].map((n) => ({ node: `node-${n}`, pools: { w: workerPool({ max }) } })),
    );
    const c = cluster;
    const a = c.nodes[0]!;
    const ids = Array.from({ length: 3 * max }, (_, i) => `burst-${i}`);
    // All at once: with the placement choice and its reservation split by an await, every
    // acquire saw the same records and sent its session to the same node, whose queue then
    // never drained (the bench's capacity figure timed out that way).
    const got = await Promise.all(
      ids.map((sessionId) =>
        c.client(a).acquireSession({ pool: "w", sessionId, wait: { seconds: 30n, nanos: 0 } }),
      ),
    );
    const perNode = ["node-a", "node-b", "node-c"].map(
      (n) => got.filter((g) => g.session?.node === n).length,
    );
    expect(perNode).toEqual([max, max, max]);
  });

  it("WebSocket traffic through a non-owner reaches the owner's worker", async () => {
    cluster = await startCluster(["a", "b"].map((n) => ({ node: `node-${n}` })));
    const c = cluster;
    const [a, b] = c.nodes as [(typeof c.nodes)[0], (typeof c.nodes)[0]];
    const { session } = await c.client(a).acquireSession({ pool: "w", sessionId: "ws" });
    const ws = new WebSocket(`${b.dataUrl.replace("http", "ws")}/s/ws/ws`);
    const reply = await new Promise<string>((resolve, reject) => {
      ws.once("message", (m) => resolve(String(m)));
      ws.once("error", reject);
    });
    ws.close();
    expect(reply).toContain(String(session!.workerPid));
  });

  it("a node that joins later knows the sessions that began before it", async () => {
    cluster = await startCluster([{ node: "node-a" }]);
    const c = cluster;
    const { session } = await c
      .client(c.nodes[0]!)
      .acquireSession({ pool: "w", sessionId: "early" });
    const late = await c.addNode({ node: "node-late" });
    const list = await c.client(late).listSessions({});
    expect(list.sessions.map((s) => [s.sessionId, s.node])).toContainEqual(["early", "node-a"]);
    const r = await get(late.dataUrl, "/whoami", { "X-Session-ID": "early" });
    expect(r.body.pid).toBe(session!.workerPid);
  });

  it("the owner counts each client connection of a forwarded session as its own", async () => {
    cluster = await startCluster(["a", "b"].map((n) => ({ node: `node-${n}` })));
    const c = cluster;
    const [a, b] = c.nodes as [(typeof c.nodes)[0], (typeof c.nodes)[0]];
    await c.client(a).acquireSession({ pool: "w", sessionId: "conns" });
    const watch = new AbortController();
    const seen: SessionEventType[] = [];
    const watching = (async () => {
      const events = c
        .client(a)
        .watchSessions({ sessionId: "conns", connectionEvents: true }, { signal: watch.signal });
      for await (const e of events) seen.push(e.type);
    })().catch(() => {});
    const count = (t: SessionEventType) => seen.filter((x) => x === t).length;
    // Two clients, each with its own keep-alive connection to b, one request after the other.
    const clients = [new Agent({ keepAlive: true }), new Agent({ keepAlive: true })];
    try {
      for (const agent of clients) {
        await new Promise<void>((resolve, reject) => {
          const req = request(
            `${b.dataUrl}/whoami`,
            { agent, headers: { "X-Session-ID": "conns" } },
            (res) => res.resume().on("end", resolve),
          );
          req.on("error", reject).end();
        });
      }
      // The owner sees two connections (not one pooled hop socket), and sees them close when
      // the clients' connections do.
      await eventually("two connections opened on the owner", () =>
        count(SessionEventType.CONNECTION_OPENED) === 2 ? true : undefined,
      );
      expect(count(SessionEventType.CONNECTION_CLOSED)).toBe(0);
      for (const agent of clients) agent.destroy();
      await eventually("both closed on the owner", () =>
        count(SessionEventType.CONNECTION_CLOSED) === 2 ? true : undefined,
      );
    } finally {
      for (const agent of clients) agent.destroy();
      watch.abort();
      await watching;
    }
  });

  it("activity on a non-owner restarts the owner's idle clock: acquire, hold, attach, data plane", async () => {
    cluster = await startCluster(
      ["a", "b", "c"].map((n) => ({ node: `node-${n}`, pools: { w: workerPool({ ttl: "10m" }) } })),
    );
    const c = cluster;
    const [a, b, cc] = c.nodes as [(typeof c.nodes)[0], (typeof c.nodes)[0], (typeof c.nodes)[0]];
    // The idle clock is the owner's lastActiveAt: its ttl counts from there.
    const clock = async (id: string) => {
      const s = (await c.client(a).listSessions({ pool: "w" })).sessions.find(
        (x) => x.sessionId === id,
      );
      if (!s?.lastActiveAt) throw new Error(`${id} is not live on its owner`);
      return timestampMs(s.lastActiveAt);
    };
    const restarts = async (id: string, what: string, act: () => Promise<unknown>) => {
      const { session } = await c.client(a).acquireSession({ pool: "w", sessionId: id });
      expect(session?.node).toBe("node-a");
      const before = await clock(id);
      await sleep(30);
      await act();
      await eventually(`${what} restarts the owner's idle clock`, async () =>
        (await clock(id)) > before ? true : undefined,
      );
      // Room for the next step's session on a (max 4).
      await c.client(a).releaseSession({ sessionId: id });
    };
    const acquire = (d: typeof a, id: string) => () =>
      c.client(d).acquireSession({ pool: "w", sessionId: id });
    await restarts("on-owner", "AcquireSession on the owner", acquire(a, "on-owner"));
    await restarts("via-b", "AcquireSession on a non-owner", acquire(b, "via-b"));
    await restarts("via-c", "AcquireSession on another non-owner", acquire(cc, "via-c"));
    await restarts("data-via-b", "data-plane traffic through a non-owner", async () => {
      expect((await get(b.dataUrl, "/whoami", { "X-Session-ID": "data-via-b" })).status).toBe(200);
    });
    // A hold restarts the clock when it begins (while it lasts the session is busy anyway).
    for (const [id, attachOnly] of [
      ["hold-via-b", false],
      ["attach-via-c", true],
    ] as const) {
      const holder = new AbortController();
      let first: () => void = () => {};
      const started = new Promise<void>((r) => {
        first = r;
      });
      let holding: Promise<void> = Promise.resolve();
      await restarts(id, `HoldSession${attachOnly ? " attach_only" : ""} on a non-owner`, () => {
        holding = (async () => {
          const stream = c
            .client(attachOnly ? cc : b)
            .holdSession({ pool: "w", sessionId: id, attachOnly }, { signal: holder.signal });
          for await (const _ of stream) first();
        })().catch(() => {});
        return started;
      });
      holder.abort();
      await holding;
    }
    // Every session ended: its record went with its end event (one script), none is left over.
    const r = createClient({ url: c.redis.url });
    r.on("error", () => {});
    await r.connect();
    try {
      await eventually("no session record left in Redis", async () =>
        (await r.scan("0", { MATCH: "herd:s:*", COUNT: 1000 })).keys.length === 0 &&
        (await r.sCard("herd:owned:node-a")) === 0
          ? true
          : undefined,
      );
    } finally {
      r.destroy();
    }
  });

  it("a peer hold never starts a session on the owner (the session ended meanwhile)", async () => {
    cluster = await startCluster([{ node: "node-a" }]);
    const c = cluster;
    const a = c.nodes[0]!;
    // What node b's HoldSession does on a for a session it believes a owns, here one that has
    // already ended: the hold must end (NOT_FOUND), not acquire the id anew on a.
    const peers = new PeerClient(new PeerAuth(SECRET, "node-b"));
    const gone = {
      info: {
        id: "ended-meanwhile",
        pool: "w",
        node: "node-a",
        workerId: "",
        workerPid: 0,
        workerAddress: "",
        token: "",
        createdAt: new Date(),
        lastActiveAt: new Date(),
        connections: 0,
        labels: {},
      },
      control: new URL(a.controlUrl).host,
      data: new URL(a.dataUrl).host,
    };
    const hold = peers.hold(gone);
    try {
      await eventually("the peer hold ends", () => (hold.ended.aborted ? true : undefined));
    } finally {
      hold.close();
    }
    const list = await c.client(a).listSessions({});
    expect(list.sessions.map((s) => s.sessionId)).not.toContain("ended-meanwhile");
  });

  it("HoldSession on a non-owner holds the session on its owner; the holder leaving ends it", async () => {
    cluster = await startCluster(["a", "b"].map((n) => ({ node: `node-${n}` })));
    const c = cluster;
    const [a, b] = c.nodes as [(typeof c.nodes)[0], (typeof c.nodes)[0]];
    const { session } = await c.client(a).acquireSession({ pool: "w", sessionId: "held" });
    const holder = new AbortController();
    const holding = (async () => {
      for await (const _ of c
        .client(b)
        .holdSession({ pool: "w", sessionId: "held" }, { signal: holder.signal })) {
        // heartbeats
      }
    })().catch(() => {});
    const onOwner = async () =>
      (await c.client(a).listSessions({ pool: "w" })).sessions.find((s) => s.sessionId === "held");
    await eventually(
      "the owner counts the hold",
      async () => ((await onOwner())?.connections ?? 0) >= 1,
    );
    holder.abort();
    await holding;
    await eventually("the owner ends the session", async () => (await onOwner()) === undefined);
    await eventually("its worker is gone or idle again", async () => {
      const st = await c.client(a).getStats({ pool: "w" });
      return st.pools[0]!.sessions === 0;
    });
    expect(session?.node).toBe("node-a");
  });
});
