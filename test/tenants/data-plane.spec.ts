// Tenants on the data plane (issue 20), down both of its paths (the fast path and node:http):
// an auto-acquire belongs to the tenant whose X-Herd-Key comes with it, the key never reaches
// the worker, a key's request to another tenant's session is answered as for an unknown
// session, an anonymous auto-acquire is refused (401) unless data.anonymous_tenant names a
// tenant for it, and a key nobody holds is refused. A tenant key may also come as
// `Authorization: Bearer`; a bearer credential that is no key of herd's is the worker's.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clientOf, KEYS, request, startTenantDaemon, type TenantDaemon } from "./helpers.ts";

describe.each(["fast", "node-http"] as const)("tenants on the data plane (%s)", (path) => {
  let d: TenantDaemon;
  beforeAll(async () => {
    d = await startTenantDaemon(
      { acme: { key_env: "KEY_ACME" }, beta: { key_env: "KEY_BETA" } },
      { data: { auto_acquire: true } },
    );
  });
  afterAll(async () => {
    await d?.stop();
  });

  it("an auto-acquire is the key's tenant's, and the key never reaches the worker", async () => {
    const op = clientOf("connect-h1", d.daemon, KEYS.operator);
    const res = await request(
      d.daemon,
      "/echo",
      { "X-Session-ID": "dp-a", "X-Herd-Key": KEYS.acme },
      path,
    );
    expect(res.status).toBe(200);
    const echo = JSON.parse(res.body) as { headers: Record<string, string> };
    expect(echo.headers["x-herd-key"]).toBeUndefined();
    expect(JSON.stringify(echo)).not.toContain(KEYS.acme);
    const session = (await op.listSessions({})).sessions.find((s) => s.sessionId === "dp-a");
    expect(session?.tenant).toBe("acme");
    // Its next request, to the live session, keeps the key from the worker too.
    const again = await request(
      d.daemon,
      "/echo",
      { "X-Session-ID": "dp-a", "X-Herd-Key": KEYS.acme },
      path,
    );
    expect(again.status).toBe(200);
    expect(again.body).not.toContain(KEYS.acme);
    // Its end is billed to its tenant: the usage counters carry the tenant label.
    await op.releaseSession({ sessionId: "dp-a" });
    const metrics = async () => {
      const res = await fetch(`${d.daemon.controlUrl}/metrics`, {
        headers: { authorization: `Bearer ${KEYS.operator}` },
      });
      return res.text();
    };
    await expect
      .poll(metrics, { timeout: 30_000 })
      .toMatch(/^herd_session_rx_bytes_total\{pool="web",tenant="acme"\} [1-9]/m);
    // /metrics is the operator's: a tenant key does not open it.
    const asTenant = await fetch(`${d.daemon.controlUrl}/metrics`, {
      headers: { authorization: `Bearer ${KEYS.acme}` },
    });
    expect(asTenant.status).toBe(401);
  });

  it("Authorization: Bearer with a tenant key is that key, and is not sent on; another Bearer is the worker's", async () => {
    const op = clientOf("connect-h1", d.daemon, KEYS.operator);
    const id = `bearer-${path}`;
    const res = await request(
      d.daemon,
      "/echo",
      { "X-Session-ID": id, Authorization: `Bearer ${KEYS.beta}` },
      path,
    );
    expect(res.status).toBe(200);
    const echo = JSON.parse(res.body) as { headers: Record<string, string> };
    expect(echo.headers.authorization).toBeUndefined();
    expect(res.body).not.toContain(KEYS.beta);
    const session = (await op.listSessions({})).sessions.find((s) => s.sessionId === id);
    expect(session?.tenant).toBe("beta");
    // A credential that is no key of herd's is the worker's own business: it goes on as sent,
    // here on a session the request names by its tenant's key.
    const own = await request(
      d.daemon,
      "/echo",
      { "X-Session-ID": id, "X-Herd-Key": KEYS.beta, Authorization: "Bearer the-workers-own" },
      path,
    );
    expect(own.status).toBe(200);
    expect(JSON.parse(own.body).headers.authorization).toBe("Bearer the-workers-own");
    // Alone, such a credential is no key: no session is made for it.
    const anonymous = await request(
      d.daemon,
      "/echo",
      { "X-Session-ID": `${id}-x`, Authorization: "Bearer the-workers-own" },
      path,
    );
    expect(anonymous.status).toBe(401);
    await op.releaseSession({ sessionId: id });
  });

  it("another tenant's session is to a key what an unknown session is", async () => {
    const beta = clientOf("connect-h1", d.daemon, KEYS.beta);
    await beta.acquireSession({ sessionId: "dp-b" });
    const res = await request(
      d.daemon,
      "/echo",
      { "X-Session-ID": "dp-b", "X-Herd-Key": KEYS.acme },
      path,
    );
    expect(res.status).toBe(404);
    expect(JSON.parse(res.body)).toEqual({
      code: "not_found",
      message: 'no live session "dp-b"',
    });
    // Its owner's key reaches it.
    const own = await request(
      d.daemon,
      "/echo",
      { "X-Session-ID": "dp-b", "X-Herd-Key": KEYS.beta },
      path,
    );
    expect(own.status).toBe(200);
    await beta.releaseSession({ sessionId: "dp-b" });
  });

  it("refuses an anonymous auto-acquire (401) and a key nobody holds", async () => {
    const op = clientOf("connect-h1", d.daemon, KEYS.operator);
    const anonymous = await request(d.daemon, "/echo", { "X-Session-ID": "dp-anon" }, path);
    expect(anonymous.status).toBe(401);
    expect(JSON.parse(anonymous.body).message).toContain("needs a tenant's key (X-Herd-Key)");
    const forged = await request(
      d.daemon,
      "/echo",
      { "X-Session-ID": "dp-forged", "X-Herd-Key": `${KEYS.acme.slice(0, -1)}!` },
      path,
    );
    expect(forged.status).toBe(401);
    const ids = (await op.listSessions({})).sessions.map((s) => s.sessionId);
    expect(ids).not.toContain("dp-anon");
    expect(ids).not.toContain("dp-forged");
  });
});

describe("data.anonymous_tenant", () => {
  let d: TenantDaemon;
  beforeAll(async () => {
    d = await startTenantDaemon(
      { acme: { key_env: "KEY_ACME" }, public: { key_env: "KEY_BETA", max_sessions: 1 } },
      { data: { anonymous_tenant: "public" } },
    );
  });
  afterAll(async () => {
    await d?.stop();
  });

  it("gives an anonymous auto-acquire to the tenant it names, within that tenant's quota", async () => {
    const op = clientOf("connect-h1", d.daemon, KEYS.operator);
    const first = await request(d.daemon, "/echo", { "X-Session-ID": "anon-1" }, "fast");
    expect(first.status).toBe(200);
    const s = (await op.listSessions({})).sessions.find((x) => x.sessionId === "anon-1");
    expect(s?.tenant).toBe("public");
    const second = await request(d.daemon, "/echo", { "X-Session-ID": "anon-2" }, "fast");
    expect(second.status).toBe(429);
    expect(second.headers["retry-after"]).toBe("1");
    expect(JSON.parse(second.body)).toEqual({
      code: "quota_exceeded",
      message: "tenant public is at its max_sessions (1): release one of its sessions first",
    });
  });
});
