// A tenant's max_sessions across a 3-node cluster (real redis-server, three `herd serve` nodes,
// real keys): new-session acquires racing on every node at once never admit more than the max
// (exactly the max when all start together), because admission is one atomic claim in Redis
// (src/cluster/redis-quota.ts); a session that ends anywhere (released, lost, expired), an
// acquire that fails, and a killed node (within one lease) give their claims back; a joined
// acquire of one id takes no second claim; a restart hand-over keeps them; Redis down fails.

import { setTimeout as sleep } from "node:timers/promises";
import { ConnectError } from "@connectrpc/connect";
import { createClient } from "redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCluster, type TestCluster, workerPool } from "../cluster/cluster-harness.ts";
import { spawnCaptured } from "../helpers/captured.ts";
import { type Daemon, HERD_BIN } from "../helpers/daemon.ts";
import { eventually } from "../helpers/herd.ts";
import { pidAlive } from "../helpers/processes.ts";
import { daemonPids, until } from "../restart/restart-helpers.ts";
import { Code, clientOf, code, failure, KEYS } from "./helpers.ts";

// Long enough that a claim's end event beats its expiry by seconds even at load 20, which is how
// the specs below tell the two apart.
const LEASE_MS = 10_000;

let c: TestCluster;
let redis: ReturnType<typeof createClient>;

beforeAll(async () => {
  const node = (name: string) => ({
    node: name,
    lease: `${LEASE_MS}ms`,
    pools: {
      w: workerPool({ max: 4, min: 2 }),
      // Its worker exits at once: every acquire in it fails (the pool's start fails).
      bad: workerPool({ cmd: [process.execPath, "-e", "process.exit(3)"], max: 1 }),
      // Its sessions expire after a second without traffic.
      brief: workerPool({ max: 1, ttl: "1s" }),
    },
    control: { token_env: "HERD_OP" },
    env: {
      HERD_OP: KEYS.operator,
      KEY_ACME: KEYS.acme,
      KEY_BETA: KEYS.beta,
      KEY_CAPPED: KEYS.capped,
    },
    config: {
      tenants: {
        acme: { key_env: "KEY_ACME", max_sessions: 2, pools: ["w"] },
        beta: { key_env: "KEY_BETA", max_sessions: 1, pools: ["w", "brief"] },
        capped: { key_env: "KEY_CAPPED", max_sessions: 1, pools: ["w", "bad"] },
      },
    },
  });
  c = await startCluster([node("node-a"), node("node-b"), node("node-c")]);
  redis = createClient({ url: c.redis.url });
  redis.on("error", () => {});
  await redis.connect();
});
afterAll(async () => {
  if (redis?.isOpen) redis.destroy();
  if (!c) return;
  // A restarted node's new process is no daemon the harness knows: stop it too.
  const tracked = new Set(c.nodes.map((d) => d.pid));
  const successors = daemonPids(c.leak.tag).filter((pid) => !tracked.has(pid));
  for (const pid of successors) process.kill(pid, "SIGINT");
  await until("the restarted daemons exit", () => successors.every((pid) => !pidAlive(pid)));
  await c.cleanup();
});

const nodes = () => c.nodes as [Daemon, Daemon, Daemon];

/** The ids holding a claim on the tenant's max_sessions in Redis. */
async function claims(tenant: string): Promise<string[]> {
  return (await redis.zRange(`herd:tq:${tenant}`, 0, -1)).sort();
}

/** Redis's clock (ms), which the claims' expiries are on. */
async function redisNow(): Promise<number> {
  const [secs, micros] = await redis.time();
  return Number(secs) * 1000 + Number(micros) / 1000;
}

/**
 * Waits until `id`'s claim is gone, and shows that the session's end took it, not its expiry:
 * a claim admitted after `since` (Redis's clock) cannot expire before one lease later.
 */
async function freedByItsEnd(tenant: string, id: string, since: number): Promise<void> {
  await eventually(
    `${id}'s claim went`,
    async () => (await redis.zScore(`herd:tq:${tenant}`, id)) === null,
  );
  expect(await redisNow(), `${id}'s claim went with its end, not by expiry`).toBeLessThan(
    since + LEASE_MS,
  );
}

/** Acquires `id` for the tenant through `d`, retrying while only its quota refuses. */
async function acquireWhenRoom(d: Daemon, key: string, id: string) {
  const client = clientOf("connect-h1", d, key);
  return eventually(`room for ${id}`, async () => {
    try {
      return (await client.acquireSession({ pool: "w", sessionId: id })).session!;
    } catch (err) {
      if (ConnectError.from(err).code === Code.ResourceExhausted) return undefined;
      throw err;
    }
  });
}

/** Every node agrees the tenant has no live session and Redis holds none of its claims. */
async function drained(tenant: string, key: string): Promise<void> {
  await eventually(`${tenant} has nothing left`, async () => {
    for (const d of nodes()) {
      if ((await clientOf("connect-h1", d, key).listSessions({})).sessions.length > 0) return false;
    }
    return (await claims(tenant)).length === 0;
  });
}

describe("max_sessions across cluster nodes", () => {
  it("new-session acquires racing on three nodes admit exactly max_sessions, round after round", async () => {
    const clients = nodes().map((d) => clientOf("connect-h1", d, KEYS.acme));
    const op = clientOf("connect-h1", nodes()[0], KEYS.operator);
    const perNode = 2;
    const rounds = 12;
    const admitted: number[] = [];
    for (let round = 0; round < rounds; round++) {
      // The barrier: every client has its connections open (one call each, in parallel), then
      // all acquires leave in one synchronous step.
      await Promise.all(
        clients.flatMap((cl) => Array.from({ length: perNode }, () => cl.listSessions({}))),
      );
      const tries = clients.flatMap((cl, n) =>
        Array.from({ length: perNode }, (_, i) =>
          cl.acquireSession({ pool: "w", sessionId: `race-${round}-${n}-${i}` }),
        ),
      );
      const results = await Promise.allSettled(tries);
      const won = results.flatMap((r) => (r.status === "fulfilled" ? [r.value.session!] : []));
      for (const r of results) {
        if (r.status === "rejected") {
          const err = ConnectError.from(r.reason);
          expect(err.code, err.rawMessage).toBe(Code.ResourceExhausted);
          expect(err.rawMessage).toContain("max_sessions (2)");
        }
      }
      admitted.push(won.length);
      // The tenant's row counts them (on every node, once the others have heard).
      if (won.length <= 2) {
        for (const d of nodes()) {
          const cl = clientOf("connect-h1", d, KEYS.acme);
          await eventually(
            "GetStats counts the tenant's sessions",
            async () => (await cl.getStats({})).tenants[0]?.sessions === won.length,
          );
        }
        expect(await claims("acme")).toEqual(won.map((s) => s.sessionId).sort());
      }
      await Promise.all(won.map((s) => op.releaseSession({ sessionId: s.sessionId })));
      await drained("acme", KEYS.acme);
    }
    expect(admitted, "sessions admitted per round (max_sessions 2)").toEqual(
      Array.from({ length: rounds }, () => 2),
    );
  });

  it("a joined acquire of one id takes no second claim", async () => {
    const [a, b, cNode] = nodes();
    const acmeA = clientOf("connect-h1", a, KEYS.acme);
    const acmeB = clientOf("connect-h1", b, KEYS.acme);
    const acmeC = clientOf("connect-h1", cNode, KEYS.acme);
    const [one, two] = await Promise.all([
      acmeA.acquireSession({ pool: "w", sessionId: "joined" }),
      acmeB.acquireSession({ pool: "w", sessionId: "joined" }),
    ]);
    expect(two.session!.workerPid).toBe(one.session!.workerPid);
    await acmeC.acquireSession({ pool: "w", sessionId: "second" });
    expect(await claims("acme")).toEqual(["joined", "second"]);
    const over = await failure(acmeC.acquireSession({ pool: "w", sessionId: "third" }));
    expect(over.code).toBe(Code.ResourceExhausted);
    for (const id of ["joined", "second"]) await acmeA.releaseSession({ sessionId: id });
    await drained("acme", KEYS.acme);
  });

  it("a session released or lost on one node frees room on another", async () => {
    const [a, b] = nodes();
    const betaA = clientOf("connect-h1", a, KEYS.beta);
    const betaB = clientOf("connect-h1", b, KEYS.beta);
    const firstAt = await redisNow();
    const first = (await betaA.acquireSession({ pool: "w", sessionId: "b1" })).session!;
    expect(first.node).toBe("node-a");
    expect(await code(betaB.acquireSession({ pool: "w", sessionId: "b2" }))).toBe(
      Code.ResourceExhausted,
    );
    await betaA.releaseSession({ sessionId: "b1" });
    await freedByItsEnd("beta", "b1", firstAt);
    const secondAt = await redisNow();
    const second = (await betaB.acquireSession({ pool: "w", sessionId: "b2" })).session!;
    expect(second.node).toBe("node-b");
    expect(await claims("beta")).toEqual(["b2"]);
    // Its worker dies: the session is lost on node b, and node a may start one.
    process.kill(second.workerPid, "SIGKILL");
    await freedByItsEnd("beta", "b2", secondAt);
    await betaA.acquireSession({ pool: "w", sessionId: "b3" });
    expect(await claims("beta")).toEqual(["b3"]);
    await betaA.releaseSession({ sessionId: "b3" });
    await drained("beta", KEYS.beta);
  });

  it("a session expired on one node frees room on another", async () => {
    const [a, b] = nodes();
    const betaA = clientOf("connect-h1", a, KEYS.beta);
    const idleAt = await redisNow();
    const idle = (await betaA.acquireSession({ pool: "brief", sessionId: "idle" })).session!;
    expect(idle.node).toBe("node-a");
    await freedByItsEnd("beta", "idle", idleAt);
    await clientOf("connect-h1", b, KEYS.beta).acquireSession({
      pool: "w",
      sessionId: "after-idle",
    });
    expect(await claims("beta")).toEqual(["after-idle"]);
    await betaA.releaseSession({ sessionId: "after-idle" });
    await drained("beta", KEYS.beta);
  });

  it("an acquire the pool fails gives its claim back", async () => {
    const [a, b] = nodes();
    const cappedA = clientOf("connect-h1", a, KEYS.capped);
    const bad = await failure(cappedA.acquireSession({ pool: "bad", sessionId: "doomed" }));
    expect(bad.code, bad.rawMessage).toBe(Code.Unavailable);
    // Room again at once (the failure is answered once the claim is back), on another node.
    await clientOf("connect-h1", b, KEYS.capped).acquireSession({ pool: "w", sessionId: "fine" });
    expect(await claims("capped")).toEqual(["fine"]);
    await cappedA.releaseSession({ sessionId: "fine" });
    await drained("capped", KEYS.capped);
  });

  it("a restart hand-over keeps the claims: the new process renews them", async () => {
    const [a, b] = nodes();
    const betaB = clientOf("connect-h1", b, KEYS.beta);
    const betaA = clientOf("connect-h1", a, KEYS.beta);
    const kept = (await betaB.acquireSession({ pool: "w", sessionId: "kept" })).session!;
    expect(kept.node).toBe("node-b");
    const run = spawnCaptured(
      process.execPath,
      [HERD_BIN, "restart", "--addr", b.controlUrl, "--json"],
      {
        env: { HERD_TOKEN: KEYS.operator },
      },
    );
    expect((await run.exited).code, run.stderr()).toBe(0);
    expect((JSON.parse(run.stdout()) as { pid: number }).pid).not.toBe(b.pid);
    // Past the bound: a claim nobody renewed since the old process paused would have expired.
    await sleep(LEASE_MS + 1_000);
    expect(pidAlive(kept.workerPid)).toBe(true);
    expect(await claims("beta")).toEqual(["kept"]);
    expect(await code(betaA.acquireSession({ pool: "w", sessionId: "after" }))).toBe(
      Code.ResourceExhausted,
    );
    await betaA.releaseSession({ sessionId: "kept" });
    await acquireWhenRoom(a, KEYS.beta, "after");
    await betaA.releaseSession({ sessionId: "after" });
    await drained("beta", KEYS.beta);
  });

  it("a killed node's claims expire within one lease of its last renewal", async () => {
    const [a, , cNode] = nodes();
    const cappedC = clientOf("connect-h1", cNode, KEYS.capped);
    const cappedA = clientOf("connect-h1", a, KEYS.capped);
    const held = (await cappedC.acquireSession({ pool: "w", sessionId: "orphan" })).session!;
    expect(held.node).toBe("node-c");
    expect(await code(cappedA.acquireSession({ pool: "w", sessionId: "next" }))).toBe(
      Code.ResourceExhausted,
    );
    await cNode.kill();
    // The bound: the claim expires (on Redis's clock) at most one lease after node c last
    // renewed it, and nothing renews it now.
    const expiry = Number(await redis.zScore("herd:tq:capped", "orphan"));
    expect(expiry - (await redisNow())).toBeLessThanOrEqual(LEASE_MS);
    await acquireWhenRoom(a, KEYS.capped, "next");
    expect(await claims("capped")).toEqual(["next"]);
    await cappedA.releaseSession({ sessionId: "next" });
  });

  it("with Redis down, a new session of a capped tenant fails UNAVAILABLE naming Redis", async () => {
    const [a] = nodes();
    const down = await c.redisDown();
    try {
      const err = await failure(
        clientOf("connect-h1", a, KEYS.acme).acquireSession({ pool: "w", sessionId: "nored" }),
      );
      expect(err.code).toBe(Code.Unavailable);
      expect(err.rawMessage).toMatch(
        /^cluster: Redis at 127\.0\.0\.1:\d+ is unreachable .*; cluster-wide acquires fail until it is back$/,
      );
    } finally {
      await down.up();
    }
  });
});
