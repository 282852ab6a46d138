// The max_sessions claims against a real redis-server (the harness's: ACL user limited to
// herd:* keys): admission is atomic across connections, an id counts once, each way a claim
// goes (settle, the end event's append, expiry) and what keeps it (an acquire in flight, a
// session record, the owner's renewal).

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RedisServer, startRedis } from "../../test/cluster/cluster-harness.ts";
import { eventually } from "../../test/helpers/herd.ts";
import type { SessionInfo } from "../core/index.ts";
import { silentLogger } from "../core/index.ts";
import { RedisConnection } from "./redis-connection.ts";
import { RedisEvents } from "./redis-events.ts";
import { RedisQuota } from "./redis-quota.ts";

let redis: RedisServer;
const connections: RedisConnection[] = [];

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  for (const c of connections) await c.close();
  await redis?.stop();
});

async function connect(): Promise<RedisConnection> {
  const c = await RedisConnection.connect(redis.url, silentLogger);
  connections.push(c);
  return c;
}

/** A node's claims: its own connection, and the live sessions it says it runs. */
async function node(ttlMs = 60_000, live: Partial<SessionInfo>[] = []) {
  const conn = await connect();
  const quota = new RedisQuota(
    conn,
    { sessions: () => live as SessionInfo[] },
    ttlMs,
    silentLogger,
  );
  return { conn, quota, live };
}

let n = 0;
/** A tenant name no other test uses. */
const fresh = () => `t${++n}-${Math.random().toString(36).slice(2, 8)}`;

async function claims(conn: RedisConnection, tenant: string): Promise<string[]> {
  return (await conn.call((c) => c.zRange(`herd:tq:${tenant}`, 0, -1))).sort();
}

describe("RedisQuota", () => {
  it("admits up to max, refuses at max, and counts an id once however many acquires hold it", async () => {
    const { conn, quota } = await node();
    const t = fresh();
    const a = await quota.claim(t, "a", 2);
    expect(a).toBeDefined();
    expect(await quota.claim(t, "a", 2)).toBeDefined(); // a joined acquire of a: shared
    expect(await quota.claim(t, "b", 2)).toBeDefined();
    expect(await quota.claim(t, "c", 2)).toBeUndefined();
    expect(await claims(conn, t)).toEqual(["a", "b"]);
    // Another tenant's count is its own.
    expect(await quota.claim(fresh(), "c", 1)).toBeDefined();
  });

  it("admits exactly max of many concurrent claims from several nodes, round after round", async () => {
    const nodes = await Promise.all([node(), node(), node()]);
    for (let round = 0; round < 20; round++) {
      const t = fresh();
      const max = 1 + (round % 4);
      const tries = nodes.flatMap(({ quota }, i) =>
        Array.from({ length: 4 }, (_, j) => quota.claim(t, `s${i}-${j}`, max)),
      );
      const held = (await Promise.all(tries)).filter((h) => h !== undefined);
      expect(held).toHaveLength(max);
      expect(await claims(nodes[0]!.conn, t)).toHaveLength(max);
    }
  });

  it("a failed acquire gives its claim back, unless a node has the session or another acquire holds it", async () => {
    const { conn, quota } = await node();
    const t = fresh();
    const first = await quota.claim(t, "x", 1);
    const joined = await quota.claim(t, "x", 1);
    await first!.settle("failed");
    await first!.settle("failed"); // once only: a second settle does nothing
    // The joined acquire still holds x: no room yet.
    expect(await conn.call((c) => c.hGet(`herd:tqh:${t}`, "x"))).toBe("1");
    expect(await quota.claim(t, "y", 1)).toBeUndefined();
    expect(await claims(conn, t)).toEqual(["x"]);
    await joined!.settle("failed");
    expect(await claims(conn, t)).toEqual([]);

    // A session record for the id (some node started it): a failed acquire leaves the claim to
    // that node; a foreign one (the id is another tenant's session) takes it away.
    await conn.call((c) => c.hSet("herd:s:z", { node: "n", gen: "1", pool: "p", state: "ready" }));
    await (await quota.claim(t, "z", 1))!.settle("failed");
    await (await quota.claim(t, "w", 2))!.settle("started");
    // z has a record: kept; w has none (its session ended already): gone.
    expect(await claims(conn, t)).toEqual(["z"]);
    expect(await conn.call((c) => c.hLen(`herd:tqh:${t}`))).toBe(0);
    const t2 = fresh();
    await (await quota.claim(t2, "z", 1))!.settle("foreign");
    expect(await claims(conn, t2)).toEqual([]);
    await conn.call((c) => c.del("herd:s:z"));
  });

  it("the end event's append frees the claim, unless an acquire in flight holds it", async () => {
    const { conn, quota } = await node();
    const events = new RedisEvents(conn);
    const t = fresh();
    const hold = await quota.claim(t, "e", 1);
    await conn.call((c) => c.hSet("herd:s:e", { node: "n", gen: "1", pool: "p", state: "ready" }));
    await hold!.settle("started");
    expect(await claims(conn, t)).toEqual(["e"]);
    // Someone else's acquire of e is in flight when it ends: the claim stays with that acquire.
    const joined = await quota.claim(t, "e", 1);
    await events.append("{}", 0, undefined, { tenant: t, id: "e" });
    expect(await claims(conn, t)).toEqual(["e"]);
    await conn.call((c) => c.del("herd:s:e"));
    await joined!.settle("failed");
    expect(await claims(conn, t)).toEqual([]);
    // No one in flight: the append alone frees it.
    await conn.call((c) => c.hSet("herd:s:f", { node: "n", gen: "1", pool: "p", state: "ready" }));
    await (await quota.claim(t, "f", 1))!.settle("started");
    expect(await claims(conn, t)).toEqual(["f"]);
    await conn.call((c) => c.del("herd:s:f"));
    await events.append("{}", 0, undefined, { tenant: t, id: "f" });
    expect(await claims(conn, t)).toEqual([]);
    expect(await quota.claim(t, "g", 1)).toBeDefined();
  });

  it("claims expire one ttl after their last renewal; the owner's renewal keeps its live sessions'", async () => {
    const t = fresh();
    const live: Partial<SessionInfo>[] = [{ id: "live", tenant: t }];
    const owner = await node(400, live);
    const other = await node(400);
    expect(await other.quota.claim(t, "live", 2)).toBeDefined();
    expect(await other.quota.claim(t, "abandoned", 2)).toBeDefined(); // its node dies: never settled
    expect(await other.quota.claim(t, "third", 2)).toBeUndefined();
    const score = async (id: string) =>
      Number(await owner.conn.call((c) => c.zScore(`herd:tq:${t}`, id)));
    const before = await score("live");
    // The owner renews on every lease tick; the abandoned claim is nobody's to renew.
    const ticks = setInterval(() => owner.quota.renew(), 50);
    try {
      await eventually(
        "the abandoned claim expired, the renewed one did not",
        async () => (await other.quota.claim(t, "third", 2)) !== undefined,
      );
      expect(await score("live")).toBeGreaterThan(before);
      expect(await claims(owner.conn, t)).toEqual(["live", "third"]);
    } finally {
      clearInterval(ticks);
    }
    // A deleted claim of a live session (Redis lost it, or someone deleted it) comes back with
    // the next renewal: the count again says what runs.
    await owner.conn.call((c) => c.zRem(`herd:tq:${t}`, "live"));
    owner.quota.renew();
    await eventually("renewal put it back", async () =>
      (await claims(owner.conn, t)).includes("live"),
    );
  });

  it("one renewal covers every live session of every tenant (more than a ZADD batch each)", async () => {
    const [t1, t2] = [fresh(), fresh()];
    const live = [
      ...Array.from({ length: 1_201 }, (_, i) => ({ id: `a${i}`, tenant: t1 })),
      ...Array.from({ length: 3 }, (_, i) => ({ id: `b${i}`, tenant: t2 })),
      { id: "operator's", tenant: undefined },
    ];
    const { conn, quota } = await node(60_000, live);
    quota.renew();
    await eventually("renewed", async () => (await claims(conn, t2)).length === 3);
    expect(await conn.call((c) => c.zCard(`herd:tq:${t1}`))).toBe(1_201);
    const ttl = await conn.call((c) => c.pTTL(`herd:tq:${t1}`));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60_000);
  });

  it("fails unavailable, naming Redis, when Redis is down", async () => {
    const own = await startRedis();
    const conn = await RedisConnection.connect(own.url, silentLogger);
    try {
      const quota = new RedisQuota(conn, { sessions: () => [] }, 1_000, silentLogger);
      await own.stop();
      const err = await quota.claim("t", "a", 1).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: "unavailable" });
      expect(String((err as Error).message)).toMatch(
        /^cluster: Redis at 127\.0\.0\.1:\d+ is unreachable .*cluster-wide acquires fail until it is back$/,
      );
    } finally {
      await conn.close();
      await own.stop();
    }
  });
});
