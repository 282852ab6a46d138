// A tenant's quotas (issue 20) with the real daemon and real keys: over max_sessions or
// acquire_rate an acquire fails RESOURCE_EXHAUSTED naming the limit (and 429 + Retry-After on
// the data plane); AcquireSessionRequest.request_id makes a retried acquire return the same
// session while it lives, per caller.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  Code,
  clientOf,
  code,
  failure,
  KEYS,
  request,
  startTenantDaemon,
  type TenantDaemon,
} from "./helpers.ts";

let d: TenantDaemon;
beforeAll(async () => {
  d = await startTenantDaemon({
    acme: { key_env: "KEY_ACME" },
    capped: { key_env: "KEY_CAPPED", max_sessions: 2 },
    rated: { key_env: "KEY_RATED", acquire_rate: "2/m" },
  });
});
afterAll(async () => {
  await d?.stop();
});

describe("tenant quotas", () => {
  it("max_sessions: the next new session fails RESOURCE_EXHAUSTED naming the limit", async () => {
    const capped = clientOf("connect-h1", d.daemon, KEYS.capped);
    await capped.acquireSession({ sessionId: "c1" });
    await capped.acquireSession({ sessionId: "c2" });
    // Its live sessions still answer (an existing id is no new session).
    expect((await capped.acquireSession({ sessionId: "c1" })).session?.sessionId).toBe("c1");
    const over = await failure(capped.acquireSession({ sessionId: "c3" }));
    expect(over.code).toBe(Code.ResourceExhausted);
    expect(over.rawMessage).toBe(
      "tenant capped is at its max_sessions (2): release one of its sessions first",
    );
    // The data plane says the same as 429 with Retry-After.
    for (const path of ["fast", "node-http"] as const) {
      const res = await request(
        d.daemon,
        "/echo",
        { "X-Session-ID": `c3-${path}`, "X-Herd-Key": KEYS.capped },
        path,
      );
      expect(res.status).toBe(429);
      expect(res.headers["retry-after"]).toBe("1");
      expect(JSON.parse(res.body).message).toContain("max_sessions (2)");
    }
    // Other tenants are not held to it.
    const acme = clientOf("connect-h1", d.daemon, KEYS.acme);
    await acme.acquireSession({ sessionId: "a-free" });
    // One released, one more fits.
    await capped.releaseSession({ sessionId: "c1" });
    await capped.acquireSession({ sessionId: "c3" });
    for (const id of ["c2", "c3"]) await capped.releaseSession({ sessionId: id });
    await acme.releaseSession({ sessionId: "a-free" });
  });

  it("max_sessions holds against concurrent acquires", async () => {
    const capped = clientOf("connect-h2", d.daemon, KEYS.capped);
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, k) => code(capped.acquireSession({ sessionId: `cc${k}` }))),
    );
    expect(results.filter((r) => r === "ok")).toHaveLength(2);
    expect(results.filter((r) => r === Code.ResourceExhausted)).toHaveLength(4);
    const live = (await capped.listSessions({})).sessions.map((s) => s.sessionId);
    expect(live).toHaveLength(2);
    for (const id of live) await capped.releaseSession({ sessionId: id });
  });

  it("acquire_rate: a burst of its size, then RESOURCE_EXHAUSTED naming the rate", async () => {
    const rated = clientOf("connect-h1", d.daemon, KEYS.rated);
    await rated.acquireSession({ sessionId: "r1" });
    await rated.acquireSession({ sessionId: "r2" });
    await rated.releaseSession({ sessionId: "r1" }); // the rate counts acquires, not live ones
    const over = await failure(rated.acquireSession({ sessionId: "r3" }));
    expect(over.code).toBe(Code.ResourceExhausted);
    expect(over.rawMessage).toMatch(/^tenant rated is over its acquire_rate \(2\/m\): retry in /);
    const res = await request(
      d.daemon,
      "/echo",
      { "X-Session-ID": "r4", "X-Herd-Key": KEYS.rated },
      "fast",
    );
    expect(res.status).toBe(429);
    // 30 s per token at 2/m: the client is told to come back when one is there.
    expect(Number(res.headers["retry-after"])).toBeGreaterThanOrEqual(20);
    expect(Number(res.headers["retry-after"])).toBeLessThanOrEqual(30);
    await rated.releaseSession({ sessionId: "r2" });
  });
});

describe("request_id", () => {
  it("a retried acquire returns the same session while it lives, per caller", async () => {
    const op = clientOf("connect-h1", d.daemon, KEYS.operator);
    const acme = clientOf("grpc", d.daemon, KEYS.acme);
    const first = (await op.acquireSession({ requestId: "req-1" })).session!;
    const retry = (await op.acquireSession({ requestId: "req-1" })).session!;
    expect(retry.sessionId).toBe(first.sessionId);
    expect(retry.workerPid).toBe(first.workerPid);
    // Another caller's request_id is its own.
    const theirs = (await acme.acquireSession({ requestId: "req-1" })).session!;
    expect(theirs.sessionId).not.toBe(first.sessionId);
    expect(theirs.tenant).toBe("acme");
    // Concurrent retries (the first still in flight) get one session.
    const both = await Promise.all([
      acme.acquireSession({ requestId: "req-2" }),
      acme.acquireSession({ requestId: "req-2" }),
    ]);
    expect(both[0].session?.sessionId).toBe(both[1].session?.sessionId);
    // With a session_id it must be the one the request_id was first used with.
    expect(await code(op.acquireSession({ requestId: "req-1", sessionId: "something-else" }))).toBe(
      Code.InvalidArgument,
    );
    // Once the session has ended a retry makes a new one.
    await op.releaseSession({ sessionId: first.sessionId });
    const later = (await op.acquireSession({ requestId: "req-1" })).session!;
    expect(later.sessionId).not.toBe(first.sessionId);
    for (const s of [later.sessionId]) await op.releaseSession({ sessionId: s });
    for (const s of [theirs.sessionId, both[0].session!.sessionId]) {
      await acme.releaseSession({ sessionId: s });
    }
  });

  it("a retry does not count against max_sessions twice", async () => {
    const capped = clientOf("connect-h1", d.daemon, KEYS.capped);
    const a = (await capped.acquireSession({ requestId: "only-one" })).session!;
    const b = (await capped.acquireSession({ requestId: "only-one" })).session!;
    expect(b.sessionId).toBe(a.sessionId);
    await capped.acquireSession({ sessionId: "second" });
    await capped.releaseSession({ sessionId: a.sessionId });
    await capped.releaseSession({ sessionId: "second" });
  });

  it("refuses a request_id longer than 128 or not printable ASCII", async () => {
    const op = clientOf("connect-h1", d.daemon, KEYS.operator);
    const long = await failure(op.acquireSession({ requestId: "x".repeat(129) }));
    expect(long.code).toBe(Code.InvalidArgument);
    expect(long.rawMessage).toBe(
      "request_id: at most 128 printable ASCII characters, got 129 characters",
    );
    expect(await code(op.acquireSession({ requestId: "line\nbreak" }))).toBe(Code.InvalidArgument);
    expect(await code(op.acquireSession({ requestId: "é" }))).toBe(Code.InvalidArgument);
    expect((await op.listSessions({})).sessions).toEqual([]);
  });
});

describe("a tenant's queue in GetStats", () => {
  it("TenantStats.queued counts the tenant's acquires waiting in a full pool", async () => {
    const acme = clientOf("connect-h1", d.daemon, KEYS.acme);
    // gpu has max 2: two sessions fill it, a third waits in its queue.
    await acme.acquireSession({ pool: "gpu", sessionId: "q1" });
    await acme.acquireSession({ pool: "gpu", sessionId: "q2" });
    const waiting = acme.acquireSession({
      pool: "gpu",
      sessionId: "q3",
      wait: { seconds: 120n, nanos: 0 },
    });
    const row = async () => (await acme.getStats({})).tenants.find((t) => t.name === "acme");
    let queued = 0;
    for (let tries = 0; tries < 300 && queued === 0; tries++) {
      queued = (await row())?.queued ?? 0;
      if (queued === 0) await new Promise((r) => setTimeout(r, 50));
    }
    expect(queued).toBe(1);
    // Served when a session ends: nothing queued any more.
    await acme.releaseSession({ sessionId: "q1" });
    expect((await waiting).session?.sessionId).toBe("q3");
    expect((await row())?.queued).toBe(0);
    for (const id of ["q2", "q3"]) await acme.releaseSession({ sessionId: id });
  });
});
