import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SessionEventType } from "../gen/herd/v1/herd_pb.ts";
import { type StubHerd, startStubHerd } from "../test/stub-herd.ts";
import { createHerdClient } from "./client.ts";
import { Code, HerdClientError } from "./index.ts";

let stub: StubHerd;
beforeAll(async () => {
  stub = await startStubHerd({ token: "s3cret" });
});
afterAll(() => stub.close());

const client = () => createHerdClient({ baseUrl: stub.url, token: "s3cret", timeoutMs: 5_000 });

async function rejection(p: Promise<unknown>): Promise<HerdClientError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(HerdClientError);
  return err as HerdClientError;
}

describe("createHerdClient", () => {
  it("takes a tenant key: the control plane's bearer token, and X-Herd-Key in each session's headers", async () => {
    const herd = createHerdClient({ baseUrl: stub.url, tenantKey: "s3cret", timeoutMs: 5_000 });
    const s = await herd.acquire("browser");
    expect(s.headers).toEqual({
      "X-Session-ID": s.id,
      "X-Herd-Token": s.token,
      "X-Herd-Key": "s3cret",
    });
    await s.release();
    const held = await herd.hold("browser");
    expect(held.headers["X-Herd-Key"]).toBe("s3cret");
    await held.release();
    const wrong = createHerdClient({ baseUrl: stub.url, tenantKey: "other", timeoutMs: 5_000 });
    expect((await rejection(wrong.acquire("browser"))).code).toBe(Code.Unauthenticated);
    expect(() => createHerdClient({ baseUrl: stub.url, token: "a", tenantKey: "b" })).toThrow(
      "give token (the operator's) or tenantKey, not both",
    );
  });

  it("acquires a session with routing headers and releases it on dispose", async () => {
    const herd = client();
    let id: string;
    {
      await using s = await herd.acquire("browser", { labels: { who: "spec" } });
      id = s.id;
      expect(s.pool).toBe("browser");
      expect(s.workerId).not.toBe("");
      expect(s.proxyUrl).toMatch(/^http:\/\//);
      expect(s.headers).toEqual({ "X-Session-ID": s.id, "X-Herd-Token": s.token });
      expect(s.info.labels).toEqual({ who: "spec" });
      const again = await herd.acquire("browser", { sessionId: s.id });
      expect(again.workerId).toBe(s.workerId);
      expect(stub.sessionIds()).toContain(id);
    }
    expect(stub.sessionIds()).not.toContain(id);
  });

  it("release is idempotent and tolerates a session already gone", async () => {
    const herd = client();
    const s = await herd.acquire("browser");
    await herd.release(s.id);
    await s.release();
    await s.release();
    const err = await rejection(herd.release(s.id));
    expect(err.code).toBe(Code.NotFound);
  });

  it("raises typed errors carrying the daemon's code", async () => {
    const herd = client();
    const unknownPool = await rejection(herd.acquire("no-such-pool"));
    expect(unknownPool.code).toBe(Code.NotFound);
    expect(unknownPool.codeName).toBe("not_found");
    const badId = await rejection(herd.acquire("browser", { sessionId: "bad id!" }));
    expect(badId.code).toBe(Code.InvalidArgument);
    const longId = await rejection(herd.acquire("browser", { sessionId: "x".repeat(10_000) }));
    expect(longId.code).toBe(Code.InvalidArgument);
    const noToken = await rejection(createHerdClient({ baseUrl: stub.url }).stats());
    expect(noToken.code).toBe(Code.Unauthenticated);
  });

  it("reports stats and sessions", async () => {
    const herd = client();
    await using s = await herd.acquire("default");
    const stats = await herd.stats({ pool: "default" });
    expect(stats.pools.map((p) => p.name)).toEqual(["default"]);
    expect(stats.pools[0]?.sessions).toBeGreaterThanOrEqual(1);
    expect(stats.node?.memoryTotalBytes).toBeGreaterThan(0n);
    const sessions = await herd.sessions({ pool: "default" });
    expect(sessions.map((x) => x.sessionId)).toContain(s.id);
  });

  it("watches events in revision order, with a snapshot, and resumes after a revision", async () => {
    const herd = client();
    const stop = new AbortController();
    const seen: { type: SessionEventType; id: string; revision: bigint }[] = [];
    const live = await herd.acquire("default", { sessionId: "watch-live" });
    const watching = (async () => {
      for await (const ev of herd.watch({ pool: "default", snapshot: true, signal: stop.signal })) {
        seen.push({ type: ev.type, id: ev.sessionId, revision: ev.revision });
        if (ev.type === SessionEventType.SESSION_RELEASED && ev.sessionId === "watch-2") break;
        if (ev.type === SessionEventType.SNAPSHOT_COMPLETE) {
          const s = await herd.acquire("default", { sessionId: "watch-2" });
          await s.release();
        }
      }
    })();
    await watching;
    expect(seen.map((e) => [e.type, e.id])).toEqual([
      [SessionEventType.SNAPSHOT, "watch-live"],
      [SessionEventType.SNAPSHOT_COMPLETE, ""],
      [SessionEventType.SESSION_ACQUIRED, "watch-2"],
      [SessionEventType.SESSION_RELEASED, "watch-2"],
    ]);
    const acquiredAt = seen[2]!.revision;
    expect(seen[3]!.revision).toBeGreaterThan(acquiredAt);

    const replay: string[] = [];
    for await (const ev of herd.watch({ sessionId: "watch-2", sinceRevision: acquiredAt - 1n })) {
      replay.push(SessionEventType[ev.type]);
      if (replay.length === 2) break;
    }
    expect(replay).toEqual(["SESSION_ACQUIRED", "SESSION_RELEASED"]);
    stop.abort();
    await live.release();
  });

  it("ends a watch quietly when its signal aborts", async () => {
    const herd = client();
    const stop = new AbortController();
    const iter = herd.watch({ signal: stop.signal })[Symbol.asyncIterator]();
    const next = iter.next();
    setTimeout(() => stop.abort(), 50);
    await expect(next).resolves.toEqual({ done: true, value: undefined });
  });

  it("ends the server-side call when the loop leaves early", async () => {
    const herd = client();
    await using s = await herd.acquire("default", { sessionId: "watch-break" });
    for await (const ev of herd.watch({ sessionId: "watch-break", sinceRevision: 1n })) {
      expect(ev.sessionId).toBe("watch-break");
      break;
    }
    const deadline = Date.now() + 5_000;
    while (stub.openWatches() > 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 10));
    expect(stub.openWatches()).toBe(0);
    expect(s.id).toBe("watch-break");
  });

  it("speaks gRPC-Web as well as Connect", async () => {
    const herd = createHerdClient({ baseUrl: stub.url, token: "s3cret", protocol: "grpc-web" });
    await using s = await herd.acquire("default");
    expect(s.id).not.toBe("");
  });
});
