// Cluster-wide WatchSessions: every node's events in the one order of the Redis stream, with
// revisions any node can resume from. Real redis-server, real daemons; every process proven
// gone at the end (cluster.cleanup).

import { Code, ConnectError } from "@connectrpc/connect";
import { createClient } from "redis";
import { afterEach, describe, expect, it } from "vitest";
import { type SessionEvent, SessionEventType } from "../../gen/herd/v1/herd_pb.ts";
import { eventually } from "../helpers/herd.ts";
import { startCluster, type TestCluster } from "./cluster-harness.ts";

let cluster: TestCluster | undefined;
afterEach(async () => {
  await cluster?.cleanup();
  cluster = undefined;
});

type Seen = { rev: bigint; type: SessionEventType; id: string; node: string };
const LIFECYCLE = new Set([SessionEventType.SESSION_ACQUIRED, SessionEventType.SESSION_RELEASED]);

/** Follows WatchSessions on `c.nodes[i]`, keeping acquire/release events. */
function follow(c: TestCluster, i: number, sinceRevision = 0n) {
  const seen: Seen[] = [];
  const stop = new AbortController();
  let failure: unknown;
  const done = (async () => {
    const stream = c.client(c.nodes[i]!).watchSessions({ sinceRevision }, { signal: stop.signal });
    for await (const e of stream as AsyncIterable<SessionEvent>) {
      if (LIFECYCLE.has(e.type)) {
        seen.push({ rev: e.revision, type: e.type, id: e.sessionId, node: e.node });
      }
    }
  })().catch((err: unknown) => {
    if (!stop.signal.aborted) failure = err;
  });
  return {
    seen,
    failure: () => failure,
    async stop() {
      stop.abort();
      await done;
    },
  };
}

describe("cluster watch", () => {
  it("events from 3 nodes arrive in one order, with the same revisions, at watchers on two nodes", async () => {
    cluster = await startCluster(["a", "b", "c"].map((n) => ({ node: `node-${n}` })));
    const c = cluster;
    const onA = follow(c, 0);
    const onB = follow(c, 1);
    await new Promise((r) => setTimeout(r, 300));
    // Each node acquires and releases sessions of its own, all at once.
    const ids = c.nodes.flatMap((_, i) => [0, 1, 2].map((k) => `w${i}-${k}`));
    await Promise.all(
      c.nodes.map(async (d, i) => {
        for (const k of [0, 1, 2]) {
          const id = `w${i}-${k}`;
          await c.client(d).acquireSession({ pool: "w", sessionId: id });
          await c.client(d).releaseSession({ sessionId: id });
        }
      }),
    );
    const all = ids.length * 2;
    await eventually("both watchers saw every event", () =>
      onA.seen.length >= all && onB.seen.length >= all ? true : undefined,
    );
    await onA.stop();
    await onB.stop();
    expect(onA.failure()).toBeUndefined();
    expect(onB.failure()).toBeUndefined();
    expect(onA.seen).toEqual(onB.seen);
    expect(onA.seen).toHaveLength(all);
    // Every node's events, each naming its node, in increasing revisions.
    expect(new Set(onA.seen.map((e) => e.node))).toEqual(new Set(["node-a", "node-b", "node-c"]));
    for (const e of onA.seen) expect(e.node).toBe(`node-${"abc"[Number(e.id[1])]}`);
    const revs = onA.seen.map((e) => e.rev);
    expect([...revs].sort((x, y) => (x < y ? -1 : 1))).toEqual(revs);
    expect(new Set(revs).size).toBe(revs.length);
  });

  it("a watcher that resumes on another node from revision R gets exactly the events after R", async () => {
    cluster = await startCluster(["a", "b", "c"].map((n) => ({ node: `node-${n}` })));
    const c = cluster;
    const first = follow(c, 0);
    await new Promise((r) => setTimeout(r, 300));
    for (const [i, id] of ["r0", "r1", "r2"].entries()) {
      await c.client(c.nodes[i]!).acquireSession({ pool: "w", sessionId: id });
    }
    await eventually("three acquires seen on a", () => (first.seen.length >= 3 ? true : undefined));
    await first.stop();
    const resumeAt = first.seen[2]!.rev;
    // While nobody watches, more happens on every node.
    for (const [i, id] of ["r0", "r1", "r2"].entries()) {
      await c.client(c.nodes[(i + 1) % 3]!).releaseSession({ sessionId: id });
    }
    await c.client(c.nodes[2]!).acquireSession({ pool: "w", sessionId: "r3" });
    // A reference watcher from before it all, on c; the resumed one on b.
    const reference = follow(c, 2, first.seen[0]!.rev - 1n);
    const resumed = follow(c, 1, resumeAt);
    await eventually("the resumed watcher caught up", () =>
      resumed.seen.length >= 4 && reference.seen.length >= 7 ? true : undefined,
    );
    // One more, live, after the catch-up: it follows without a gap or a repeat.
    await c.client(c.nodes[0]!).releaseSession({ sessionId: "r3" });
    await eventually("live event seen", () =>
      resumed.seen.length >= 5 && reference.seen.length >= 8 ? true : undefined,
    );
    await resumed.stop();
    await reference.stop();
    expect(resumed.failure()).toBeUndefined();
    expect(reference.seen.slice(0, 3)).toEqual(first.seen);
    expect(resumed.seen).toEqual(reference.seen.filter((e) => e.rev > resumeAt));
    expect(resumed.seen.map((e) => [e.type, e.id])).toEqual([
      [SessionEventType.SESSION_RELEASED, "r0"],
      [SessionEventType.SESSION_RELEASED, "r1"],
      [SessionEventType.SESSION_RELEASED, "r2"],
      [SessionEventType.SESSION_ACQUIRED, "r3"],
      [SessionEventType.SESSION_RELEASED, "r3"],
    ]);
  });

  it("a watcher with a snapshot sees its node's connection events live", async () => {
    cluster = await startCluster([{ node: "node-a" }]);
    const c = cluster;
    const a = c.nodes[0]!;
    await c.client(a).acquireSession({ pool: "w", sessionId: "cx" });
    // Quiet first, so the connection's event comes at the snapshot's revision (the case that
    // must not be taken for an event the snapshot reflects).
    await new Promise((r) => setTimeout(r, 1_000));
    const stop = new AbortController();
    const seen: SessionEventType[] = [];
    const watching = (async () => {
      const stream = c
        .client(a)
        .watchSessions({ snapshot: true, connectionEvents: true }, { signal: stop.signal });
      for await (const e of stream) seen.push(e.type);
    })().catch(() => {});
    try {
      await eventually("snapshot delivered", () =>
        seen.includes(SessionEventType.SNAPSHOT_COMPLETE) ? true : undefined,
      );
      const res = await fetch(`${a.dataUrl}/whoami`, { headers: { "X-Session-ID": "cx" } });
      await res.arrayBuffer();
      await eventually("connection_opened seen", () =>
        seen.includes(SessionEventType.CONNECTION_OPENED) ? true : undefined,
      );
    } finally {
      stop.abort();
      await watching;
    }
  });

  it("a Redis outage cuts watchers off with UNAVAILABLE instead of letting them miss events silently", async () => {
    cluster = await startCluster(["a", "b"].map((n) => ({ node: `node-${n}` })));
    const c = cluster;
    const watchers = [follow(c, 0), follow(c, 1)];
    await new Promise((r) => setTimeout(r, 300));
    const outage = await c.redisDown();
    try {
      for (const [i, w] of watchers.entries()) {
        const err = await eventually(`watcher on node ${i} cut off`, () => w.failure());
        expect(ConnectError.from(err).code).toBe(Code.Unavailable);
        expect(ConnectError.from(err).rawMessage).toMatch(/Redis .* unreachable.*snapshot/);
      }
    } finally {
      await outage.up();
      for (const w of watchers) await w.stop();
    }
  });

  it("a revision the stream no longer holds, or beyond its newest, is OUT_OF_RANGE on any node", async () => {
    cluster = await startCluster(["a", "b"].map((n) => ({ node: `node-${n}` })));
    const c = cluster;
    const watched = follow(c, 0);
    await new Promise((r) => setTimeout(r, 300));
    for (const id of ["t0", "t1", "t2"]) {
      await c.client(c.nodes[0]!).acquireSession({ pool: "w", sessionId: id });
    }
    await eventually("three acquires seen", () => (watched.seen.length >= 3 ? true : undefined));
    await watched.stop();
    const r2 = watched.seen[2]!.rev; // > 2: two acquires came before it
    // Trim the stream as MAXLEN would: everything before r2 is gone.
    const redis = createClient({ url: c.redis.url });
    await redis.connect();
    try {
      await redis.sendCommand(["XTRIM", "herd:events", "MINID", `${r2}-0`]);
    } finally {
      redis.destroy();
    }
    const code = async (sinceRevision: bigint) => {
      const stream = c.client(c.nodes[1]!).watchSessions({ sinceRevision });
      try {
        for await (const e of stream) return `event ${e.revision}`;
      } catch (err) {
        return Code[ConnectError.from(err).code];
      }
    };
    expect(await code(r2 - 2n)).toBe("OutOfRange"); // too old: r2 - 1 was trimmed
    expect(await code(r2 - 1n)).toBe(`event ${r2}`); // the oldest resumable point
    expect(await code(1_000_000n)).toBe("OutOfRange"); // ahead of every node
  });
});
