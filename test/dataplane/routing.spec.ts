// Session routing through the real data plane to real workers: affinity, isolation between
// sessions, tokens, auto_acquire off, and what the worker gets to see. The order of the id
// sources is test/security/session-id-precedence.spec.ts.
import { request } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { startDataPlane } from "../../src/dataplane/index.ts";
import { stackTracker, startStack, type Whoami, whoami } from "./stack.ts";

const { track, stopAll } = stackTracker();
afterEach(stopAll);

/** GET over a fresh TCP connection (no keep-alive): proves affinity survives reconnects. */
function getFresh(
  url: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false, headers }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("data plane routing", () => {
  it("pins a session to one worker across many requests and reconnects", async () => {
    const s = track(await startStack());
    const h = { "X-Session-ID": "affine" };
    const first = await whoami(s.url, { headers: h });
    for (let i = 2; i <= 30; i++) {
      const w =
        i % 2 === 0
          ? await whoami(s.url, { headers: h })
          : (JSON.parse((await getFresh(`${s.url}/whoami`, h)).body) as Whoami);
      expect(w.pid).toBe(first.pid);
      expect(w.counter).toBe(i); // no request went anywhere else
    }
    const session = s.herd.lookup("affine")!;
    expect(session.workerPid).toBe(first.pid);
    // Keep-alive to the worker: far fewer upstream connections than requests.
    expect(s.dp.counters.upstreamConnections).toBeLessThan(5);
  });

  it("never crosses 100 interleaved sessions", async () => {
    // 100 workers booting at once on a small shared machine: generous start timeout.
    const s = track(await startStack([{ max: 100, startTimeoutMs: 150_000 }]));
    const ids = Array.from({ length: 100 }, (_, i) => `tenant-${i}`);
    const firsts = await Promise.all(
      ids.map((id) => whoami(s.url, { headers: { "X-Session-ID": id } })),
    );
    expect(new Set(firsts.map((w) => w.pid)).size).toBe(100);
    const rounds = 5;
    const seen = new Map<string, Whoami[]>();
    await Promise.all(
      ids.map(async (id, i) => {
        for (let r = 0; r < rounds; r++) {
          // Stagger so requests of different sessions interleave on the proxy's connections.
          const w = await whoami(s.url, { headers: { "X-Session-ID": id } });
          seen.set(id, [...(seen.get(id) ?? []), w]);
          if ((i + r) % 3 === 0) await new Promise((ok) => setImmediate(ok));
        }
      }),
    );
    ids.forEach((id, i) => {
      const ws = seen.get(id)!;
      expect(ws.map((w) => w.pid)).toEqual(Array(rounds).fill(firsts[i]!.pid));
      expect(ws.map((w) => w.counter)).toEqual([2, 3, 4, 5, 6]);
      expect(s.herd.lookup(id)!.workerPid).toBe(firsts[i]!.pid);
    });
  }, 240_000);

  it("honours a custom session header name and X-Herd-Pool", async () => {
    const s = track(
      await startStack([{}, { env: { WORKER_TAG: "second" } }], {
        sessionHeader: "X-Agent-ID",
        defaultPool: "p0",
      }),
    );
    await whoami(s.url, { headers: { "X-Agent-ID": "ag-1" } });
    await whoami(s.url, { headers: { "X-Agent-ID": "ag-2", "X-Herd-Pool": "p1" } });
    expect(s.herd.lookup("ag-1")!.pool).toBe("p0");
    expect(s.herd.lookup("ag-2")!.pool).toBe("p1");
    const bad = await fetch(`${s.url}/whoami`, {
      headers: { "X-Agent-ID": "ag-3", "X-Herd-Pool": "nope" },
    });
    expect(bad.status).toBe(404);
    expect(await bad.json()).toMatchObject({ code: "not_found" });
  });

  it("answers 400 with a JSON reason for a missing or malformed id", async () => {
    const s = track(await startStack());
    const missing = await fetch(`${s.url}/whoami`);
    expect(missing.status).toBe(400);
    expect(await missing.json()).toMatchObject({
      code: "invalid_argument",
      message: expect.stringContaining("missing session id"),
    });
    const bad = await fetch(`${s.url}/whoami`, { headers: { "X-Session-ID": "no/slashes" } });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { message: string }).message).toContain("header x-session-id");
    expect(s.herd.sessions()).toEqual([]);
  });

  it("with auto_acquire off routes only existing sessions; unknown ids get 404", async () => {
    const s = track(await startStack([{}], { autoAcquire: false }));
    const unknown = await fetch(`${s.url}/whoami`, { headers: { "X-Session-ID": "ghost" } });
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ code: "not_found" });
    expect(s.herd.sessions()).toEqual([]);
    const made = await s.herd.acquire("p0", "made");
    expect((await whoami(s.url, { headers: { "X-Session-ID": "made" } })).pid).toBe(made.workerPid);
  });

  it("with tokens on refuses traffic without the session's token, and never forwards it", async () => {
    const s = track(await startStack([{}], { tokens: true }));
    const made = await s.herd.acquire("p0", "secure");
    const h = { "X-Session-ID": "secure" };
    for (const init of [{ headers: h }, { headers: { ...h, "X-Herd-Token": "wrong" } }]) {
      const res = await fetch(`${s.url}/echo`, init);
      expect(res.status).toBe(401);
      expect(await res.json()).toMatchObject({ code: "unauthenticated" });
    }
    // An unknown id is refused the same way (no session is created, nothing is revealed).
    const ghost = await fetch(`${s.url}/echo`, {
      headers: { "X-Session-ID": "ghost", "X-Herd-Token": made.token },
    });
    expect(ghost.status).toBe(401);
    expect(s.herd.lookup("ghost")).toBeUndefined();

    const viaHeader = await fetch(`${s.url}/echo`, {
      headers: { ...h, "X-Herd-Token": made.token, "X-Herd-Pool": "p0" },
    });
    const viaQuery = await fetch(`${s.url}/echo?herd_token=${made.token}&keep=1`, { headers: h });
    const viaCookie = await fetch(`${s.url}/s/secure/echo`, {
      headers: { cookie: `a=1; herd_token=${made.token}` },
    });
    for (const res of [viaHeader, viaQuery, viaCookie]) {
      expect(res.status).toBe(200);
      const text = await res.text();
      expect(text).not.toContain(made.token);
      expect(text).not.toMatch(/x-herd-|herd_token/i);
    }
  });

  it("defaults to tokens only off loopback", async () => {
    const s = track(await startStack([{}], { listen: "0.0.0.0:0" }));
    const res = await fetch(`http://127.0.0.1:${s.dp.port}/whoami`, {
      headers: { "X-Session-ID": "x" },
    });
    expect(res.status).toBe(401);
  });

  it("fails to start with a clear error when the port is taken", async () => {
    const s = track(await startStack());
    await expect(startDataPlane(s.herd, { listen: `127.0.0.1:${s.dp.port}` })).rejects.toThrow(
      `data plane: cannot listen on 127.0.0.1:${s.dp.port}: listen EADDRINUSE`,
    );
    await expect(startDataPlane(s.herd, { listen: "nonsense" })).rejects.toThrow(
      "is not host:port",
    );
  });

  it("sets X-Forwarded-* and removes hop-by-hop headers", async () => {
    const s = track(await startStack());
    const res = await getFresh(`${s.url}/echo`, {
      "X-Session-ID": "fwd",
      "X-Forwarded-For": "10.1.2.3",
      Connection: "X-Private",
      "X-Private": "1",
      "Proxy-Authorization": "x",
    });
    const { headers } = JSON.parse(res.body) as { headers: Record<string, string> };
    expect(headers["x-forwarded-for"]).toBe("10.1.2.3, 127.0.0.1");
    expect(headers["x-forwarded-proto"]).toBe("http");
    expect(headers["x-forwarded-host"]).toBe(`127.0.0.1:${s.dp.port}`);
    expect(headers["x-private"]).toBeUndefined();
    expect(headers["proxy-authorization"]).toBeUndefined();
    expect(headers["x-session-id"]).toBe("fwd");
  });
});
