import { mkdtempSync, rmSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { connect as http2Connect } from "node:http2";
import { connect as netConnect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterEach, describe, expect, it } from "vitest";
import { Health, HealthCheckResponse_ServingStatus } from "../../gen/grpc/health/v1/health_pb.ts";
import { AcquireSessionRequestSchema, HerdService } from "../../gen/herd/v1/herd_pb.ts";
import {
  codeOf,
  type Harness,
  herdClient,
  PROTOCOLS,
  startHarness,
  streamEndCode,
  transportFor,
} from "../../test/helpers/control-plane-harness.ts";
import { pidAlive } from "../../test/helpers/processes.ts";

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

/** A raw HTTP/1.1 POST, for bodies no client would send. */
function post(
  url: string,
  path: string,
  headers: Record<string, string>,
  body: Buffer | string,
): Promise<{
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${url}${path}`, { method: "POST", headers }, (res) => {
      let text = "";
      res.setEncoding("utf8").on("data", (d: string) => {
        text += d;
      });
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body: text }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

describe("control plane over every protocol on one port", () => {
  it.each(PROTOCOLS)(
    "%s: acquire is idempotent, stats and listings agree, release ends it",
    async (protocol) => {
      h = await startHarness([{ reuse: false }]);
      const c = herdClient(protocol, h.cp.url);
      const id = `s-${protocol}`;
      const a = await c.acquireSession({ sessionId: id, labels: { owner: "spec" } });
      expect(a.session).toMatchObject({
        sessionId: id,
        pool: "w",
        dataPlaneUrl: "http://127.0.0.1:9",
        labels: { owner: "spec" },
      });
      expect(a.session!.token.length).toBeGreaterThan(20);
      const pid = a.session!.workerPid;
      expect(pidAlive(pid)).toBe(true);
      const again = await c.acquireSession({ sessionId: id });
      expect(again.session!.workerPid).toBe(pid);
      expect(again.session!.workerId).toBe(a.session!.workerId);

      const stats = await c.getStats({});
      expect(stats.instanceId).toMatch(/^[0-9a-f-]{36}$/);
      expect((await c.getStats({})).instanceId).toBe(stats.instanceId);
      expect(stats.pools).toHaveLength(1);
      expect(stats.pools[0]).toMatchObject({
        name: "w",
        sessions: 1,
        workersBusy: 1,
        min: 0,
        max: 4,
      });
      expect(stats.node!.memoryTotalBytes).toBeGreaterThan(0n);
      const list = await c.listSessions({ pool: "w" });
      expect(list.sessions.map((s) => s.sessionId)).toEqual([id]);

      const r = await c.releaseSession({ sessionId: id });
      expect(r.session!.sessionId).toBe(id);
      expect((await c.listSessions({})).sessions).toEqual([]);
      expect(await codeOf(c.releaseSession({ sessionId: id }))).toBe(Code.NotFound);
    },
  );

  it.each(PROTOCOLS)("%s: bad requests get the code from the error table", async (protocol) => {
    h = await startHarness();
    const c = herdClient(protocol, h.cp.url);
    expect(await codeOf(c.acquireSession({ pool: "nope" }))).toBe(Code.NotFound);
    expect(await codeOf(c.getStats({ pool: "nope" }))).toBe(Code.NotFound);
    expect(await codeOf(c.listSessions({ pool: "nope" }))).toBe(Code.NotFound);
    expect(await codeOf(c.acquireSession({ sessionId: "has space" }))).toBe(Code.InvalidArgument);
    expect(await codeOf(c.acquireSession({ sessionId: "x".repeat(10_240) }))).toBe(
      Code.InvalidArgument,
    );
    expect(await codeOf(c.releaseSession({ sessionId: "" }))).toBe(Code.InvalidArgument);
    expect(await codeOf(c.acquireSession({ labels: { "bad key!": "v" } }))).toBe(
      Code.InvalidArgument,
    );
    expect(await codeOf(c.renewHold({ sessionId: "a", holdId: "b" }))).toBe(Code.NotFound);
    // The daemon is unaffected: a good call still works and nothing was started.
    expect(h.herd.stats().pools[0]!.workersTotal).toBe(0);
    expect((await c.getStats({})).pools[0]!.name).toBe("w");
  });

  it("an empty pool means the default pool, or the live session's own pool", async () => {
    h = await startHarness([{}, {}], { defaultPool: "w1" });
    const c = herdClient("connect-h1", h.cp.url);
    expect((await c.acquireSession({ sessionId: "d" })).session!.pool).toBe("w1");
    await c.acquireSession({ pool: "w", sessionId: "in-w" });
    expect((await c.acquireSession({ sessionId: "in-w" })).session!.pool).toBe("w");
    expect(await codeOf(c.acquireSession({ pool: "w1", sessionId: "in-w" }))).toBe(
      Code.FailedPrecondition,
    );
  });

  it("a full pool answers RESOURCE_EXHAUSTED (queue full) or DEADLINE_EXCEEDED (wait ran out)", async () => {
    h = await startHarness([
      { max: 1, queueLimit: 0 },
      { name: "q", max: 1, queueLimit: 5 },
    ]);
    const c = herdClient("grpc", h.cp.url);
    await c.acquireSession({ sessionId: "one" });
    expect(await codeOf(c.acquireSession({ sessionId: "two" }))).toBe(Code.ResourceExhausted);
    await c.acquireSession({ pool: "q", sessionId: "q1" });
    const t0 = Date.now();
    expect(
      await codeOf(
        c.acquireSession({ pool: "q", sessionId: "q2", wait: { seconds: 0n, nanos: 200_000_000 } }),
      ),
    ).toBe(Code.DeadlineExceeded);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(150);
  });

  it("waits as long as an acquire asks, even 10,000 years, and refuses Durations out of range", async () => {
    h = await startHarness([{ max: 1 }]);
    const c = herdClient("grpc", h.cp.url);
    await c.acquireSession({ sessionId: "first" });
    const tenThousandYears = { seconds: 315_576_000_000n, nanos: 0 };
    const queued = c.acquireSession({ sessionId: "second", wait: tenThousandYears });
    const early = await Promise.race([
      queued.then(
        () => "served",
        (err: ConnectError) => `failed: ${err.message}`,
      ),
      new Promise((r) => setTimeout(() => r("still waiting"), 500)),
    ]);
    expect(early).toBe("still waiting");
    await c.releaseSession({ sessionId: "first" });
    expect((await queued).session!.sessionId).toBe("second");
    for (const [wait, message] of [
      [{ seconds: 1n, nanos: 1_000_000_000 }, /wait: nanos 1000000000 is out of range/],
      [{ seconds: 1n, nanos: -1 }, /wait: seconds 1 and nanos -1 have different signs/],
      [{ seconds: 315_576_000_001n, nanos: 0 }, /wait: seconds 315576000001 is out of range/],
      [{ seconds: -1n, nanos: 0 }, /wait: must not be negative/],
    ] as const) {
      const err = await c
        .acquireSession({ sessionId: "third", wait })
        .catch((e: ConnectError) => e);
      expect(err).toBeInstanceOf(ConnectError);
      expect((err as ConnectError).code).toBe(Code.InvalidArgument);
      expect((err as ConnectError).message).toMatch(message);
    }
  });

  it("rejects malformed bodies and wrong content types, and keeps serving", async () => {
    h = await startHarness();
    const path = "/herd.v1.HerdService/AcquireSession";
    const garbage = await post(
      h.cp.url,
      path,
      { "content-type": "application/proto" },
      Buffer.from([0xff, 0xff, 0xff, 0x0f, 0x08]),
    );
    // connect-es answers undecodable protobuf with INTERNAL ("parse binary: ..."), not
    // INVALID_ARGUMENT as connect-go does; the parse happens before any interceptor can map it.
    expect(garbage.status).toBe(500);
    expect(JSON.parse(garbage.body).message).toMatch(/^parse binary: /);
    const badJson = await post(h.cp.url, path, { "content-type": "application/json" }, "{not json");
    expect(badJson.status).toBe(400);
    const wrongField = await post(
      h.cp.url,
      path,
      { "content-type": "application/json" },
      '{"sessionId": 5}',
    );
    expect(JSON.parse(wrongField.body).code).toBe("invalid_argument");
    const wrongType = await post(h.cp.url, path, { "content-type": "text/plain" }, "hello");
    expect(wrongType.status).toBe(415);
    const grpcNoEnvelope = await post(
      h.cp.url,
      path,
      { "content-type": "application/grpc-web+proto" },
      Buffer.from([1, 2]),
    );
    expect(grpcNoEnvelope.headers["grpc-status"] ?? grpcNoEnvelope.body).toBeTruthy();
    const unknownMethod = await post(
      h.cp.url,
      "/herd.v1.HerdService/Nope",
      { "content-type": "application/json" },
      "{}",
    );
    expect(unknownMethod.status).toBe(404);
    // A valid protobuf body still works afterwards.
    const ok = await post(
      h.cp.url,
      path,
      { "content-type": "application/proto" },
      Buffer.from(
        toBinary(
          AcquireSessionRequestSchema,
          create(AcquireSessionRequestSchema, { sessionId: "fine" }),
        ),
      ),
    );
    expect(ok.status).toBe(200);
    expect(h.herd.lookup("fine")).toBeDefined();
  });

  it("/metrics counts each way a client's session ends: disconnect, reconnect window, preemption", async () => {
    h = await startHarness([
      { max: 1, disconnectGraceMs: 0, preemptIdleMs: 100 },
      { disconnectGraceMs: 100 },
    ]);
    const c = herdClient("grpc", h.cp.url);
    const dropHold = async (pool: string, sessionId: string) => {
      const drop = new AbortController();
      await c
        .holdSession({ pool, sessionId }, { signal: drop.signal })
        [Symbol.asyncIterator]()
        .next();
      drop.abort();
    };
    await dropHold("w", "gone-now");
    await dropHold("w1", "gone-later");
    const ended = () => h!.herd.lookup("gone-now") ?? h!.herd.lookup("gone-later");
    for (let i = 0; i < 150 && ended(); i++) await new Promise((r) => setTimeout(r, 100));
    await c.acquireSession({ pool: "w", sessionId: "idler" });
    await c.acquireSession({ pool: "w", sessionId: "waiter" }); // preempts idler
    const metrics = await (await fetch(`${h.cp.url}/metrics`)).text();
    for (const [pool, reason] of [
      ["w", "disconnect"],
      ["w1", "reconnect_window_expired"],
      ["w", "preempted"],
    ]) {
      expect(metrics).toContain(`herd_sessions_ended_total{pool="${pool}",reason="${reason}"} 1`);
    }
  });

  it("serves /healthz, /metrics and grpc.health.v1", async () => {
    h = await startHarness();
    const c = herdClient("connect-h1", h.cp.url);
    await c.acquireSession({ sessionId: "m1" });
    await c.releaseSession({ sessionId: "m1" });
    await codeOf(c.acquireSession({ pool: "nope" }));
    expect(await (await fetch(`${h.cp.url}/healthz`)).text()).toBe("ok\n");
    const metrics = await (await fetch(`${h.cp.url}/metrics`)).text();
    expect(metrics).toContain(
      'herd_rpc_requests_total{method="herd.v1.HerdService/AcquireSession",code="ok"} 1',
    );
    expect(metrics).toContain(
      'herd_rpc_requests_total{method="herd.v1.HerdService/AcquireSession",code="not_found"} 1',
    );
    expect(metrics).toContain('herd_acquire_duration_seconds_count{pool="w"} 1');
    expect(metrics).toContain('herd_sessions_ended_total{pool="w",reason="released"} 1');
    expect(metrics).toMatch(/herd_pool_workers\{pool="w",state="idle"\} 1/);
    expect(metrics).toContain('herd_pool_sessions{pool="w"} 0');
    expect((await fetch(`${h.cp.url}/nope`)).status).toBe(404);
    for (const protocol of ["connect-h1", "grpc"] as const) {
      const health = createClient(Health, transportFor(protocol, h.cp.url));
      expect((await health.check({})).status).toBe(HealthCheckResponse_ServingStatus.SERVING);
      expect((await health.check({ service: "herd.v1.HerdService" })).status).toBe(
        HealthCheckResponse_ServingStatus.SERVING,
      );
      expect(await codeOf(health.check({ service: "nope" }))).toBe(Code.NotFound);
    }
  });

  it.each([
    [
      "hand-over",
      "200 ok, Connection: close: the successor serves",
      /^HTTP\/1\.1 200 [\s\S]*connection: close[\s\S]*\r\n\r\nok\n$/i,
    ],
    ["shutdown", "503: the service is going away", /^HTTP\/1\.1 503 [\s\S]*shutting down\n$/],
  ] as const)(
    "/healthz asked on an open connection as close(%s) begins: %s",
    async (reason, _, answer) => {
      h = await startHarness();
      // A request already under way when close() begins (its head not yet complete), so the
      // connection is not idle and is served rather than closed.
      const socket = netConnect(h.cp.port, "127.0.0.1");
      let text = "";
      socket.setEncoding("latin1").on("data", (d: string) => {
        text += d;
      });
      const ended = new Promise((resolve) => socket.once("close", resolve));
      await new Promise((resolve) => socket.once("connect", resolve));
      socket.write("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n");
      await new Promise((resolve) => setTimeout(resolve, 50));
      const closed = h.cp.close(reason);
      socket.write("\r\n");
      await ended;
      await closed;
      expect(text).toMatch(answer);
    },
  );

  it("demands the bearer token on every call but health checks", async () => {
    h = await startHarness([{}], { token: "s3cret" });
    const anon = herdClient("grpc", h.cp.url);
    const wrong = herdClient("connect-h1", h.cp.url, "wrong");
    const right = herdClient("connect-h2", h.cp.url, "s3cret");
    expect(await codeOf(anon.getStats({}))).toBe(Code.Unauthenticated);
    expect(await codeOf(wrong.getStats({}))).toBe(Code.Unauthenticated);
    expect(await codeOf(anon.watchSessions({})[Symbol.asyncIterator]().next())).toBe(
      Code.Unauthenticated,
    );
    expect(await codeOf(right.getStats({}))).toBe("ok");
    expect((await createClient(Health, transportFor("grpc", h.cp.url)).check({})).status).toBe(
      HealthCheckResponse_ServingStatus.SERVING,
    );
    expect((await fetch(`${h.cp.url}/metrics`)).status).toBe(401);
    expect(
      (await fetch(`${h.cp.url}/metrics`, { headers: { authorization: "Bearer s3cret" } })).status,
    ).toBe(200);
    expect((await fetch(`${h.cp.url}/healthz`)).status).toBe(200);
  });

  it("leaves /metrics out when metrics are disabled", async () => {
    h = await startHarness([{}], { metrics: false });
    expect((await fetch(`${h.cp.url}/metrics`)).status).toBe(404);
    expect((await fetch(`${h.cp.url}/healthz`)).status).toBe(200);
  });

  it("refuses to bind a non-loopback address without a token", async () => {
    await expect(startHarness([{}], { listen: "0.0.0.0:0" })).rejects.toThrow(/needs a token/);
  });

  it("also serves on a Unix socket, replacing a stale socket file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "herd-sock-"));
    const socket = join(dir, "herd.sock");
    try {
      h = await startHarness([{}], { socket });
      await h.cp.close();
      await h.herd.close();
      h = await startHarness([{}], { socket });
      const c = createClient(
        HerdService,
        createConnectTransport({
          baseUrl: "http://localhost",
          httpVersion: "1.1",
          nodeOptions: { socketPath: socket },
        }),
      );
      expect((await c.getStats({})).pools[0]!.name).toBe("w");
    } finally {
      await h?.close();
      h = undefined;
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("close() ends open streams with UNAVAILABLE and sends GOAWAY on HTTP/2", async () => {
    h = await startHarness();
    const c1 = herdClient("connect-h1", h.cp.url);
    const g = herdClient("grpc", h.cp.url);
    const watch = c1.watchSessions({ snapshot: true })[Symbol.asyncIterator]();
    await watch.next(); // snapshot_complete: the stream is open
    const hold = g.holdSession({ sessionId: "held" })[Symbol.asyncIterator]();
    expect((await hold.next()).value?.kind.case).toBe("session");
    // An idle HTTP/2 connection that has made a request: it must see GOAWAY.
    const session = http2Connect(h.cp.url);
    const goaway = new Promise<void>((resolve) => session.once("goaway", () => resolve()));
    const req = session.request({ ":path": "/healthz" });
    req.resume();
    await new Promise((resolve) => req.once("end", resolve));
    const t0 = Date.now();
    await h.cp.close();
    expect(Date.now() - t0).toBeLessThan(2000); // nothing had to wait for the drain deadline
    await goaway;
    session.destroy();
    expect(await streamEndCode(watch)).toBe(Code.Unavailable);
    expect(await streamEndCode(hold)).toBe(Code.Unavailable);
    expect(await codeOf(c1.getStats({}))).toBe(Code.Unavailable);
  });
});
