// Connection-scoped lifetimes through the real data plane: a lease per client connection keeps
// a session busy, release_on_disconnect kills the tree when the last one closes (never between
// requests of one keep-alive connection), the reconnect window, the `auto` default, data_timeout answers 504 and kills the worker, a
// worker crash answers 502 and loses the session, a session's end closes its connections.
import { Agent, request } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import WebSocket from "ws";
import type { HerdEvent, SessionDirectory } from "../../src/core/index.ts";
import { pidAlive, waitForPidsGone } from "../helpers/index.ts";
import { stackTracker, startStack, type Whoami, whoami } from "./stack.ts";

const { track, stopAll } = stackTracker();
afterEach(stopAll);

function openWs(url: string, headers: Record<string, string> = {}): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.once("message", () => resolve(ws));
    ws.once("error", reject);
  });
}

/** GET on a keep-alive agent's connection: status and the worker's whoami. */
function getOn(agent: Agent, url: string, headers: Record<string, string>): Promise<Whoami> {
  return new Promise((resolve, reject) =>
    request(url, { agent, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString();
        if (res.statusCode === 200) resolve(JSON.parse(text) as Whoami);
        else reject(new Error(`${res.statusCode}: ${text}`));
      });
    })
      .once("error", reject)
      .end(),
  );
}

/** A request on a connection of its own that closes after the answer (Connection: close). */
function oneShot(url: string, init: { method?: string; headers: Record<string, string> }) {
  return new Promise<{ status: number; body: string }>((resolve, reject) =>
    request(url, { agent: false, method: init.method ?? "GET", headers: init.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }),
      );
    })
      .once("error", reject)
      .end(),
  );
}

/** Collects every event from now on; stop() ends the subscription. */
function record(directory: SessionDirectory): { events: HerdEvent[]; stop(): void } {
  const events: HerdEvent[] = [];
  const sub = directory.subscribe({ sinceRevision: directory.revision() });
  void (async () => {
    for await (const e of sub) events.push(e);
  })();
  return { events, stop: () => sub.close() };
}

describe("data plane lifetimes", () => {
  it("holds a lease per client connection (idle keep-alive included) and per WebSocket", async () => {
    const s = track(await startStack());
    const h = { "X-Session-ID": "busy" };
    const keepAlive = new Agent({ keepAlive: true, maxSockets: 1 });
    await getOn(keepAlive, `${s.url}/whoami`, h);
    await getOn(keepAlive, `${s.url}/whoami`, h);
    expect(s.herd.lookup("busy")!.connections).toBe(1);
    expect((await oneShot(`${s.url}/whoami`, { headers: h })).status).toBe(200);
    await expect.poll(() => s.herd.lookup("busy")?.connections).toBe(1);
    const ws = await openWs(`${s.url.replace("http:", "ws:")}/s/busy/ws`);
    expect(s.herd.lookup("busy")!.connections).toBe(2);
    keepAlive.destroy();
    await expect.poll(() => s.herd.lookup("busy")?.connections).toBe(1);
    ws.close();
    await expect.poll(() => s.herd.lookup("busy")?.connections).toBe(0);
  });

  it("release_on_disconnect never ends a session between requests of one keep-alive connection", async () => {
    // Regression: the data lease was per request, so each of these ran on a fresh worker.
    const s = track(
      await startStack([{ releaseOnDisconnect: true, reuse: false, disconnectGraceMs: 0 }]),
    );
    const h = { "X-Session-ID": "keep" };
    const keepAlive = new Agent({ keepAlive: true, maxSockets: 1 });
    const seen: Whoami[] = [];
    for (let i = 0; i < 3; i++) {
      seen.push(await getOn(keepAlive, `${s.url}/whoami`, h));
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(new Set(seen.map((w) => w.pid)).size).toBe(1);
    expect(seen.map((w) => w.counter)).toEqual([1, 2, 3]);
    keepAlive.destroy();
    expect(await waitForPidsGone([seen[0]!.pid], 5000)).toEqual([]);
    expect(s.herd.lookup("keep")).toBeUndefined();
  });

  it("publishes one connection_opened/closed pair per client connection and session", async () => {
    const s = track(await startStack());
    const rec = record(s.herd);
    const keepAlive = new Agent({ keepAlive: true, maxSockets: 1 });
    const get = (path: string, id: string) =>
      new Promise<number>((resolve, reject) =>
        request(`${s.url}${path}`, { agent: keepAlive, headers: { "X-Session-ID": id } }, (res) => {
          res.resume();
          res.on("end", () => resolve(res.statusCode ?? 0));
        })
          .once("error", reject)
          .end(),
      );
    // One TCP connection carrying three requests of "ev-a" and one of "ev-b".
    for (const id of ["ev-a", "ev-a", "ev-b", "ev-a"]) expect(await get("/whoami", id)).toBe(200);
    const ws = await openWs(`${s.url.replace("http:", "ws:")}/s/ev-a/ws`);
    ws.close();
    // The idle keep-alive connection still carries ev-a.
    await expect.poll(() => s.herd.lookup("ev-a")?.connections).toBe(1);
    keepAlive.destroy();
    const connectionEvents = () =>
      rec.events
        .filter((e) => e.type.startsWith("connection_"))
        .map((e) => `${e.type}:${e.sessionId}:${e.reason}`);
    await expect.poll(connectionEvents).toHaveLength(6);
    expect(connectionEvents()).toEqual([
      "connection_opened:ev-a:http",
      "connection_opened:ev-b:http",
      "connection_opened:ev-a:websocket",
      "connection_closed:ev-a:websocket",
      "connection_closed:ev-a:http",
      "connection_closed:ev-b:http",
    ]);
    rec.stop();
  });

  it("release_on_disconnect ends the session and kills its whole tree when the last connection closes", async () => {
    const s = track(
      await startStack([{ releaseOnDisconnect: true, reuse: false, disconnectGraceMs: 0 }]),
    );
    const ws = await openWs(`${s.url.replace("http:", "ws:")}/ws`, { "X-Session-ID": "dms" });
    const { workerPid } = s.herd.lookup("dms")!;
    // Grandchildren that leave the process group: they must die with the worker all the same.
    const spawned = await oneShot(`${s.url}/control/spawn?count=2&setsid=1`, {
      method: "POST",
      headers: { "X-Session-ID": "dms" },
    });
    const { pids } = JSON.parse(spawned.body) as { pids: number[] };
    expect(pids.every(pidAlive)).toBe(true);
    expect(s.herd.lookup("dms")).toBeDefined(); // the WebSocket still holds it
    ws.close();
    expect(await waitForPidsGone([workerPid, ...pids], 5000)).toEqual([]);
    expect(s.herd.lookup("dms")).toBeUndefined();
  });

  it("auto: a data-plane WebSocket session waits disconnect_grace for its client; a reconnect within it reaches the same worker", async () => {
    const s = track(await startStack([{ reuse: false, disconnectGraceMs: 1000 }]));
    const rec = record(s.herd);
    const wsUrl = `${s.url.replace("http:", "ws:")}/ws`;
    const h = { "X-Session-ID": "tab" };
    let ws = await openWs(wsUrl, h);
    const { workerPid } = s.herd.lookup("tab")!;
    ws.close();
    await expect.poll(() => s.herd.lookup("tab")?.reconnectDeadline).toBeDefined();
    ws = await openWs(wsUrl, h);
    expect(s.herd.lookup("tab")?.workerPid).toBe(workerPid);
    expect(s.herd.lookup("tab")?.reconnectDeadline).toBeUndefined();
    ws.terminate(); // gone without a close frame, like a killed client
    const goneAt = Date.now();
    expect(await waitForPidsGone([workerPid], 15_000)).toEqual([]);
    // Timers never fire early: the tree lived through the whole window.
    expect(Date.now() - goneAt).toBeGreaterThanOrEqual(900);
    const ends = () =>
      rec.events
        .filter((e) => e.sessionId === "tab" && e.type.startsWith("session_"))
        .map((e) => `${e.type}:${e.reason ?? ""}`);
    await expect
      .poll(ends)
      .toEqual(["session_acquired:", "session_expired:reconnect_window_expired"]);
    rec.stop();
  });

  it("auto: a session that only ever carried plain HTTP outlives its connections (the Ollama seed)", async () => {
    const s = track(
      await startStack([{ reuse: false, disconnectGraceMs: 200 }], { sessionHeader: "X-Agent-ID" }),
    );
    const seen: Whoami[] = [];
    for (let i = 0; i < 5; i++) {
      // Each on a connection of its own, further apart than the reconnect window.
      const res = await oneShot(`${s.url}/whoami`, { headers: { "X-Agent-ID": "agent-42" } });
      expect(res.status).toBe(200);
      seen.push(JSON.parse(res.body) as Whoami);
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(new Set(seen.map((w) => w.pid)).size).toBe(1);
    expect(seen.map((w) => w.counter)).toEqual([1, 2, 3, 4, 5]);
    expect(s.herd.lookup("agent-42")).toBeDefined();
  });

  it("with tokens on, only a reconnect carrying the session's token calls the end off", async () => {
    const s = track(
      await startStack([{ releaseOnDisconnect: true, reuse: false, disconnectGraceMs: 1500 }], {
        tokens: true,
      }),
    );
    const session = await s.herd.acquire("p0", "secret-tab");
    const wsUrl = `${s.url.replace("http:", "ws:")}/ws`;
    const id = { "X-Session-ID": session.id };
    const ws = await openWs(wsUrl, { ...id, "X-Herd-Token": session.token });
    ws.close();
    await expect.poll(() => s.herd.lookup(session.id)?.reconnectDeadline).toBeDefined();
    await expect(openWs(wsUrl, id)).rejects.toThrow(/401/);
    expect(s.herd.lookup(session.id)?.reconnectDeadline).toBeDefined();
    const back = await openWs(wsUrl, { ...id, "X-Herd-Token": session.token });
    expect(s.herd.lookup(session.id)?.reconnectDeadline).toBeUndefined();
    await new Promise((r) => setTimeout(r, 2000)); // past the first window
    expect(s.herd.lookup(session.id)?.workerPid).toBe(session.workerPid);
    back.close();
    expect(await waitForPidsGone([session.workerPid], 15_000)).toEqual([]);
  });

  it("data_timeout answers 504 and kills the hung worker, reporting the session lost", async () => {
    const s = track(await startStack([{ dataTimeoutMs: 400 }]));
    const rec = record(s.herd);
    const h = { "X-Session-ID": "slow" };
    const { pid } = await whoami(s.url, { headers: h });
    const res = await fetch(`${s.url}/hang`, { headers: h });
    expect(res.status).toBe(504);
    expect(await res.json()).toMatchObject({
      code: "deadline_exceeded",
      message: expect.stringContaining("data_timeout"),
    });
    expect(await waitForPidsGone([pid], 5000)).toEqual([]);
    await expect
      .poll(
        () => rec.events.find((e) => e.type === "session_lost" && e.sessionId === "slow")?.reason,
      )
      .toContain("data_timeout");
    expect(s.herd.lookup("slow")).toBeUndefined();
    rec.stop();
  });

  it("data_timeout without kill answers 504 and keeps the session", async () => {
    // The deadline covers the wait for the answer's head, so it must be generous enough for a
    // loaded machine to get the SSE head out; the stream then outlasts it several times over.
    const s = track(await startStack([{ dataTimeoutMs: 1_500, killOnDataTimeout: false }]));
    const h = { "X-Session-ID": "slow-keep" };
    const { pid } = await whoami(s.url, { headers: h });
    expect((await fetch(`${s.url}/hang`, { headers: h })).status).toBe(504);
    // A streaming answer that started in time is not cut by the deadline.
    const sse = await fetch(`${s.url}/sse?n=4&interval=1000`, { headers: h });
    expect(sse.status).toBe(200);
    expect((await sse.text()).split("\n\n").length).toBe(5);
    expect((await whoami(s.url, { headers: h })).pid).toBe(pid);
  });

  it("a worker crashing mid-request answers 502 and the session is lost", async () => {
    const s = track(await startStack());
    const rec = record(s.herd);
    const h = { "X-Session-ID": "crashy" };
    const { pid } = await whoami(s.url, { headers: h });
    const res = await fetch(`${s.url}/control/crash?code=3`, { method: "POST", headers: h });
    expect(res.status).toBe(502);
    expect(await res.json()).toMatchObject({ code: "unavailable" });
    expect(await waitForPidsGone([pid], 5000)).toEqual([]);
    await expect
      .poll(
        () => rec.events.find((e) => e.type === "session_lost" && e.sessionId === "crashy")?.reason,
      )
      .toBeDefined();
    expect(s.herd.lookup("crashy")).toBeUndefined();
    // The id is usable again: a new session on a new worker.
    expect((await whoami(s.url, { headers: h })).pid).not.toBe(pid);
    rec.stop();
  });

  it("a worker dying mid-body breaks the client's response instead of ending it short", async () => {
    const s = track(await startStack());
    const h = { "X-Session-ID": "midbody" };
    const { pid } = await whoami(s.url, { headers: h });
    const outcome = await new Promise<string>((resolve) => {
      const req = request(`${s.url}/download?mb=200`, { headers: h }, (res) => {
        let bytes = 0;
        res.on("data", (c: Buffer) => {
          if (bytes === 0) process.kill(pid, "SIGKILL");
          bytes += c.length;
        });
        res.on("end", () => resolve(`ended after ${bytes}`));
        res.on("error", () => resolve("broken"));
        res.on("aborted", () => resolve("broken"));
      });
      req.on("error", () => resolve("broken"));
      req.end();
    });
    expect(outcome).toBe("broken");
  });

  it("max_lifetime closes an open WebSocket", async () => {
    const s = track(await startStack([{ maxLifetimeMs: 700 }]));
    const ws = await openWs(`${s.url.replace("http:", "ws:")}/ws`, { "X-Session-ID": "aging" });
    const code = await new Promise<number>((ok) => ws.once("close", ok));
    expect(code).toBe(1006);
    expect(s.herd.lookup("aging")).toBeUndefined();
  });

  it("ending a session closes its open WebSockets and requests", async () => {
    const s = track(await startStack());
    const h = { "X-Session-ID": "ending" };
    const ws = await openWs(`${s.url.replace("http:", "ws:")}/ws`, h);
    const closed = new Promise<number>((ok) => ws.once("close", ok));
    const hanging = fetch(`${s.url}/hang`, { headers: h }).then((r) => r.status);
    await expect.poll(() => s.herd.lookup("ending")?.connections).toBe(2);
    await s.herd.release("ending");
    expect(await closed).toBe(1006);
    expect(await hanging).toBe(502);
  });
});

describe("data plane upstream keep-alive", () => {
  const STALE_WORKER = new URL("./stale-socket-worker.mjs", import.meta.url).pathname;

  it("retries an idempotent request once when a reused upstream socket was reset", async () => {
    const s = track(await startStack([{ command: [process.execPath, STALE_WORKER] }]));
    const h = { "X-Session-ID": "stale" };
    const seen: number[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await fetch(`${s.url}/any`, { headers: h });
      expect(res.status).toBe(200);
      seen.push(((await res.json()) as { connection: number }).connection);
    }
    // Every second request met a reset socket and was replayed on a fresh connection.
    expect(new Set(seen).size).toBe(4);
    // A POST is not replayed: the client gets 502, not a duplicate side effect.
    const post = await fetch(`${s.url}/any`, { method: "POST", headers: h, body: "x" });
    expect(post.status).toBe(502);
    expect(await post.json()).toMatchObject({
      code: "unavailable",
      message: expect.stringContaining("ECONNRESET"),
    });
  });
});
