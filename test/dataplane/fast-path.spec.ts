// The data plane's fast path (src/dataplane/fast-connection.ts): plain requests for a live
// session forwarded over one pinned upstream connection, streaming, what a hostile worker can
// and cannot do through it, and the hand-off to node:http in the middle of a keep-alive
// connection. Each spec checks `counters.fastForwarded`, so it proves which path answered.
import { Agent, request } from "node:http";
import { connect, type Socket } from "node:net";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it, vi } from "vitest";
import { closeAll, eventually } from "../abuse/raw-client.ts";
import { stackTracker, startStack } from "./stack.ts";

const { track, stopAll } = stackTracker();
afterEach(async () => {
  closeAllRaw();
  closeAll();
  await stopAll();
});

const RAW_WORKER = fileURLToPath(new URL("./raw-worker.mjs", import.meta.url));

/** A raw keep-alive client connection: what was received so far, and a way to wait for more. */
interface Raw {
  socket: Socket;
  readonly text: string;
  closed: boolean;
  send(s: string | Buffer): void;
  until(check: (text: string) => boolean, what: string): Promise<string>;
}

const raws = new Set<Socket>();
function closeAllRaw(): void {
  for (const s of raws) s.destroy();
  raws.clear();
}

function raw(port: number): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    raws.add(socket);
    let text = "";
    const r: Raw = {
      socket,
      get text() {
        return text;
      },
      closed: false,
      send: (s) => socket.write(s),
      async until(check, what) {
        const ok = await eventually(() => check(text) || r.closed, 15_000);
        if (!ok || !check(text))
          throw new Error(`raw client: no ${what}; got ${JSON.stringify(text)}`);
        return text;
      },
    };
    socket.setEncoding("latin1");
    socket.on("data", (d: string) => (text += d));
    socket.on("error", () => {});
    socket.on("close", () => (r.closed = true));
    socket.once("connect", () => resolve(r));
    socket.once("error", reject);
  });
}

const count = (text: string, s: string) => text.split(s).length - 1;
const b64 = (s: string) => encodeURIComponent(Buffer.from(s, "latin1").toString("base64"));
const get = (path: string, id: string, extra = "") =>
  `GET ${path} HTTP/1.1\r\nHost: herd\r\nX-Session-ID: ${id}\r\n${extra}\r\n`;

/** A stack whose pool runs the raw worker, with session `id` acquired. */
async function rawStack(id: string, pool: Record<string, unknown> = {}) {
  const s = track(await startStack([{ command: [process.execPath, RAW_WORKER], ...pool }]));
  await s.herd.acquire("p0", id);
  return s;
}

describe("data plane fast path", () => {
  it("forwards N keep-alive requests over exactly one upstream connection", async () => {
    const s = await rawStack("pin");
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const seen: { connection: number; request: number }[] = [];
    for (let i = 0; i < 40; i++) {
      const body = await new Promise<string>((resolve, reject) => {
        const req = request(
          `${s.url}/count`,
          { agent, headers: { "X-Session-ID": "pin" } },
          (res) => {
            let text = "";
            res.setEncoding("utf8");
            res.on("data", (c) => (text += c));
            res.on("end", () => resolve(text));
          },
        );
        req.on("error", reject);
        req.end();
      });
      seen.push(JSON.parse(body));
    }
    agent.destroy();
    expect(new Set(seen.map((x) => x.connection)).size).toBe(1);
    expect(seen.at(-1)!.request).toBe(40);
    expect(s.dp.counters.upstreamConnections).toBe(1);
    expect(s.dp.counters.fastForwarded).toBe(40);
  });

  it("keeps the upstream connection of a client that left before its answer came", async () => {
    const s = track(await startStack());
    await s.herd.acquire("p0", "leaver");
    const gone = await raw(s.dp.port);
    gone.send(get("/sleep?ms=300", "leaver"));
    await eventually(() => s.dp.counters.fastForwarded === 1);
    gone.socket.destroy();
    await new Promise((r) => setTimeout(r, 600));
    // Left while its answer was awaited (and one that never comes): that upstream goes.
    const hung = await raw(s.dp.port);
    hung.send(get("/hang", "leaver"));
    await eventually(() => s.dp.counters.fastForwarded === 2);
    hung.socket.destroy();
    const next = await raw(s.dp.port);
    next.send(get("/whoami", "leaver"));
    await next.until((t) => t.includes('"counter"'), "the answer");
    expect(s.dp.counters.upstreamConnections).toBe(2);
  });

  it("counts one lease per client connection, however many requests it carries", async () => {
    const s = await rawStack("lease");
    const c = await raw(s.dp.port);
    for (let i = 1; i <= 5; i++) {
      c.send(get("/count", "lease"));
      await c.until((t) => count(t, "HTTP/1.1 200") === i, `response ${i}`);
      expect(s.herd.lookup("lease")!.connections).toBe(1);
    }
    expect(s.dp.counters.fastForwarded).toBe(5);
    // Handed to node:http (HTTP/1.0), the connection keeps the one lease it has.
    c.send(
      "GET /count HTTP/1.0\r\nHost: herd\r\nX-Session-ID: lease\r\nConnection: keep-alive\r\n\r\n",
    );
    await c.until((t) => count(t, '"connection"') === 6, "the node:http answer");
    expect(s.dp.counters.forwarded).toBe(6);
    expect(s.herd.lookup("lease")!.connections).toBe(1);
    c.socket.destroy();
    expect(await eventually(() => s.herd.lookup("lease")!.connections === 0)).toBe(true);
  });

  it("streams a chunked response (SSE) as the worker produces it", async () => {
    const s = track(await startStack());
    await s.herd.acquire("p0", "sse");
    const c = await raw(s.dp.port);
    const start = Date.now();
    c.send(get("/sse?n=4&interval=400", "sse"));
    await c.until((t) => t.includes("data: 0"), "first event");
    const firstMs = Date.now() - start;
    expect(c.text).not.toContain("data: 3");
    expect(c.text).toMatch(/Transfer-Encoding: chunked\r\n/i);
    await c.until((t) => t.endsWith("0\r\n\r\n"), "end of the chunked body");
    expect(Date.now() - start).toBeGreaterThan(firstMs + 800);
    expect(s.dp.counters.fastForwarded).toBe(1);
    // The connection stays usable after the streamed body.
    c.send(get("/whoami", "sse"));
    await c.until((t) => t.includes('"counter"'), "a second response");
  });

  it("cuts a streaming response when its session ends, and answers 502 to a waiting one", async () => {
    const s = track(await startStack());
    await s.herd.acquire("p0", "ends");
    const c = await raw(s.dp.port);
    c.send(get("/sse?n=100&interval=100", "ends"));
    await c.until((t) => t.includes("data: 0"), "the first event");
    await s.herd.release("ends");
    expect(await eventually(() => c.closed)).toBe(true);
    expect(c.text).not.toContain("\r\n0\r\n\r\n");

    await s.herd.acquire("p0", "ends-waiting");
    const w = await raw(s.dp.port);
    w.send(get("/hang", "ends-waiting"));
    await eventually(() => s.dp.counters.fastForwarded === 2);
    await s.herd.release("ends-waiting");
    const text = await w.until((t) => t.includes("}"), "the 502");
    expect(text).toMatch(/^HTTP\/1\.1 502 /);
    expect(text).toContain("session released");
  });

  it("forwards 1xx interim responses and drops herd_* Set-Cookie lines", async () => {
    const s = await rawStack("cookies");
    const c = await raw(s.dp.port);
    const answer =
      "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n" +
      "HTTP/1.1 200 OK\r\nSet-Cookie: herd_session=victim; Path=/\r\nSet-Cookie: HERD_TOKEN=x\r\n" +
      "Set-Cookie: theme=dark\r\nContent-Length: 2\r\n\r\nok";
    c.send(get(`/raw?r=${b64(answer)}`, "cookies"));
    const text = await c.until((t) => t.endsWith("ok"), "the answer");
    expect(text).toMatch(/^HTTP\/1\.1 103 Early Hints\r\nLink: <\/a.css>; rel=preload\r\n\r\n/);
    expect(text).toContain("Set-Cookie: theme=dark\r\n");
    expect(text.toLowerCase()).not.toContain("herd_");
    expect(s.dp.counters.fastForwarded).toBe(1);
  });

  it.each([
    ["a malformed head", "HTTP/1.1 200 OK\r\nBad Header\r\n\r\n"],
    ["a bogus Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 12abc\r\n\r\nok"],
    [
      "Content-Length with Transfer-Encoding",
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ],
    [
      "101 to a plain request",
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n",
    ],
  ])("answers 502 for %s from the worker", async (_what, answer) => {
    const s = await rawStack("hostile");
    const c = await raw(s.dp.port);
    c.send(get(`/raw?r=${b64(answer)}`, "hostile"));
    const text = await c.until((t) => t.includes("}"), "an answer");
    expect(text).toMatch(/^HTTP\/1\.1 502 /);
    expect(text).toContain('"code":"unavailable"');
    expect(await eventually(() => c.closed)).toBe(true);
    expect(s.dp.counters.fastForwarded).toBe(1);
  });

  it("cuts the client when the worker closes in the middle of a body", async () => {
    const s = await rawStack("cut");
    const c = await raw(s.dp.port);
    const answer = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b";
    c.send(get(`/raw?close=1&r=${b64(answer)}`, "cut"));
    expect(await eventually(() => c.closed)).toBe(true);
    expect(c.text).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(c.text.endsWith("only ten b")).toBe(true);
  });

  it("delivers an early answer and closes the connection instead of reading the upload", async () => {
    const s = await rawStack("early");
    const c = await raw(s.dp.port);
    const answer = "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 4\r\n\r\nnope";
    c.send(
      `POST /early?r=${b64(answer)} HTTP/1.1\r\nHost: herd\r\nX-Session-ID: early\r\nContent-Length: 1000000\r\n\r\n`,
    );
    c.send("x".repeat(1000));
    await c.until((t) => t.endsWith("nope"), "the early answer");
    expect(await eventually(() => c.closed)).toBe(true);
    expect(c.text).toMatch(/^HTTP\/1\.1 413 /);
  });

  it("answers 504 on the fast path when the worker stays silent past data_timeout", async () => {
    const s = await rawStack("slow", { dataTimeoutMs: 300 });
    const c = await raw(s.dp.port);
    c.send(get("/silent", "slow"));
    const text = await c.until((t) => t.includes("}"), "the 504");
    expect(text).toMatch(/^HTTP\/1\.1 504 /);
    expect(text).toContain("data_timeout");
    expect(s.dp.counters.fastForwarded).toBe(1);
  });

  it("hands a keep-alive connection to node:http at an upgrade, after fast requests", async () => {
    const s = track(await startStack());
    await s.herd.acquire("p0", "mixed");
    const c = await raw(s.dp.port);
    c.send(get("/whoami", "mixed"));
    await c.until((t) => count(t, '"counter"') === 1, "the fast answer");
    c.send(
      get(
        "/ws",
        "mixed",
        "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
      ),
    );
    await c.until((t) => t.includes("101 Switching Protocols"), "the 101");
    expect(s.dp.counters.fastForwarded).toBe(1);
    expect(s.dp.counters.forwarded).toBe(2);
  });

  it("hands over an unknown session and a malformed request, answering them as node:http does", async () => {
    const s = track(await startStack([{}], { autoAcquire: false }));
    await s.herd.acquire("p0", "known");
    const c = await raw(s.dp.port);
    c.send(get("/whoami", "known"));
    await c.until((t) => count(t, '"counter"') === 1, "the fast answer");
    c.send(get("/whoami", "nobody"));
    await c.until((t) => t.includes("404 Not Found"), "the 404");
    // node:http keeps the connection after an error answer: the known session still works...
    c.send(get("/whoami", "known"));
    await c.until((t) => count(t, '"counter"') === 2, "the second answer");
    // ...and a malformed request gets its 400 and the connection is closed.
    c.send("GET /whoami HTTP/1.1\r\nHost: herd\r\nBad Header\r\n\r\n");
    await c.until((t) => t.includes("400 Bad Request"), "the 400");
    expect(await eventually(() => c.closed)).toBe(true);
    expect(s.dp.counters.fastForwarded).toBe(1);
    expect(s.dp.counters.forwarded).toBe(2);
  });

  it("serves a session re-created under the same id on its new worker, on the same connection", async () => {
    const s = track(await startStack([{ reuse: false }]));
    const first = await s.herd.acquire("p0", "again");
    const c = await raw(s.dp.port);
    c.send(get("/whoami", "again"));
    await c.until((t) => t.includes(`"pid":${first.workerPid},`), "the first worker's answer");
    c.send(get("/whoami", "again"));
    await c.until((t) => count(t, `"pid":${first.workerPid},`) === 2, "its second answer");
    await s.herd.release("again");
    const second = await s.herd.acquire("p0", "again");
    expect(second.workerPid).not.toBe(first.workerPid);
    c.send(get("/whoami", "again"));
    await c.until((t) => t.includes(`"pid":${second.workerPid},`), "the new worker's answer");
    expect(s.dp.counters.fastForwarded).toBe(3);
  });

  it("checks the token of every request on a connection, not only its first", async () => {
    const s = track(await startStack([{}], { tokens: true }));
    const session = await s.herd.acquire("p0", "tok");
    const c = await raw(s.dp.port);
    const asked = (token: string) => get("/whoami", "tok", `X-Herd-Token: ${token}\r\n`);
    c.send(asked(session.token));
    await c.until((t) => count(t, '"counter"') === 1, "the first answer");
    c.send(asked(session.token));
    await c.until((t) => count(t, '"counter"') === 2, "the second answer");
    const wrong = `${session.token.slice(0, -1)}${session.token.endsWith("x") ? "y" : "x"}`;
    c.send(asked(wrong));
    await c.until((t) => t.includes("401 Unauthorized"), "the 401 for a wrong token");
    expect(s.dp.counters.fastForwarded).toBe(2);
  });

  it("serves a connection whose first request creates its session on the fast path", async () => {
    const s = track(await startStack([{}]));
    const c = await raw(s.dp.port);
    for (let i = 1; i <= 3; i++) {
      c.send(get("/whoami", "created-here"));
      await c.until((t) => count(t, '"counter"') === i, `answer ${i}`);
    }
    expect(s.herd.lookup("created-here")).toBeDefined();
    expect(s.dp.counters.fastForwarded).toBe(3);
    expect(s.dp.counters.forwarded).toBe(3);
  });

  it("answers an acquire the fast path waited for in vain once, without waiting again", async () => {
    // The pool's 300 ms is the wait meant to run out; the holder's cold start gets its own
    // wait, generous enough for a loaded machine.
    const s = track(await startStack([{ max: 1, acquireTimeoutMs: 300 }]));
    await s.herd.acquire("p0", "holder", { waitMs: 60_000 });
    const acquire = vi.spyOn(s.herd, "acquire");
    const c = await raw(s.dp.port);
    c.send(get("/whoami", "waits"));
    await c.until((t) => t.includes("503 Service Unavailable"), "the 503");
    expect(c.text).toContain("no worker of pool p0 became free in time");
    expect(acquire.mock.calls.filter(([, id]) => id === "waits")).toHaveLength(1);
    // The connection is node:http's now and still serves the live session.
    c.send(get("/whoami", "holder"));
    await c.until((t) => count(t, '"counter"') === 1, "the holder's answer");
  });

  it("stops waiting for a worker when the client leaves during the wait", async () => {
    const s = track(await startStack([{ max: 1, acquireTimeoutMs: 30_000 }]));
    await s.herd.acquire("p0", "holder");
    const c = await raw(s.dp.port);
    c.send(get("/whoami", "leaver"));
    expect(await eventually(() => s.herd.stats("p0").pools[0]!.queued === 1)).toBe(true);
    c.socket.destroy();
    expect(await eventually(() => s.herd.stats("p0").pools[0]!.queued === 0)).toBe(true);
    expect(s.herd.lookup("leaver")).toBeUndefined();
  });

  it("closes a keep-alive connection idle for 5 s, after serving it", async () => {
    const s = await rawStack("idle");
    const c = await raw(s.dp.port);
    for (let i = 1; i <= 2; i++) {
      c.send(get("/count", "idle"));
      await c.until((t) => count(t, "HTTP/1.1 200") === i, `response ${i}`);
      await new Promise((r) => setTimeout(r, 1_000));
    }
    const quiet = Date.now();
    expect(await eventually(() => c.closed, 15_000)).toBe(true);
    expect(Date.now() - quiet).toBeGreaterThan(3_000);
    expect(s.dp.counters.fastForwarded).toBe(2);
  });

  it("answers pipelined requests in order, and a half-closed client before closing", async () => {
    const s = await rawStack("pipe");
    const c = await raw(s.dp.port);
    c.send(get("/count", "pipe") + get("/count", "pipe") + get("/count", "pipe"));
    c.socket.end();
    expect(await eventually(() => c.closed)).toBe(true);
    const requests = [...c.text.matchAll(/"request":(\d+)/g)].map((m) => Number(m[1]));
    expect(requests).toEqual([1, 2, 3]);
    expect(s.dp.counters.fastForwarded).toBe(3);
  });

  it("streams an upload with Content-Length and a download, byte for byte", async () => {
    const s = track(await startStack());
    await s.herd.acquire("p0", "bulk");
    const body = Buffer.alloc(8 * 1024 * 1024, 7);
    const up = await fetch(`${s.url}/upload`, {
      method: "POST",
      headers: { "X-Session-ID": "bulk" },
      body,
    });
    const { createHash } = await import("node:crypto");
    expect(await up.json()).toEqual({
      bytes: body.length,
      sha256: createHash("sha256").update(body).digest("hex"),
    });
    const down = await fetch(`${s.url}/download?mb=16`, { headers: { "X-Session-ID": "bulk" } });
    const bytes = new Uint8Array(await down.arrayBuffer());
    expect(bytes.length).toBe(16 * 1024 * 1024);
    expect(bytes[1000]).toBe(1000 % 251);
    expect(s.dp.counters.fastForwarded).toBe(2);
  });

  it("delivers every byte of a download to a client that stops reading (upstream read buffer reuse)", async () => {
    // The upstream connection reads into one buffer of its own; bytes the client socket could
    // not send at once still point into it, so the next read must get a new one.
    const s = track(await startStack());
    await s.herd.acquire("p0", "slow");
    const mb = 16;
    const socket = connect(Number(new URL(s.url).port), "127.0.0.1");
    raws.add(socket);
    await new Promise((ok) => socket.once("connect", ok));
    // 8 KB a millisecond: the proxy reads each piece on its own, and once the client's kernel
    // buffers are full (a few MB) the client socket queues a piece and its write() still
    // returns true (below the 16 KiB mark), so the upstream connection reads on.
    socket.write(get(`/download?mb=${mb}&piece=8000`, "slow"));
    socket.pause();
    // The client reads nothing for a while (the whole body takes 2 s or more to send).
    await new Promise((ok) => setTimeout(ok, 2500));
    const chunks: Buffer[] = [];
    let size = 0;
    let headBytes = -1;
    await new Promise<void>((resolve, reject) => {
      socket.on("error", reject);
      socket.on("data", (d: Buffer) => {
        chunks.push(d);
        size += d.length;
        if (headBytes < 0) headBytes = Buffer.concat(chunks).indexOf("\r\n\r\n") + 4;
        if (headBytes > 3 && size - headBytes >= mb * 1024 * 1024) resolve();
      });
      socket.resume();
    });
    const body = Buffer.concat(chunks).subarray(headBytes);
    expect(body.length).toBe(mb * 1024 * 1024);
    let wrong = -1;
    for (let k = 0; k < body.length && wrong < 0; k++) if (body[k] !== k % 251) wrong = k;
    expect(wrong).toBe(-1);
    expect(s.dp.counters.fastForwarded).toBe(1);
  });

  it("answers 408 to a request body slower than the body deadline", async () => {
    const s = track(await startStack([{}], { bodyTimeoutMs: 300, bodyMinRate: 100 }));
    await s.herd.acquire("p0", "trickle");
    const c = await raw(s.dp.port);
    c.send(
      "POST /upload HTTP/1.1\r\nHost: herd\r\nX-Session-ID: trickle\r\nContent-Length: 100000\r\n\r\n",
    );
    c.send("x".repeat(10));
    const text = await c.until((t) => t.includes("}"), "the 408");
    expect(text).toMatch(/^HTTP\/1\.1 408 /);
    expect(text).toContain("request body too slow");
    expect(await eventually(() => c.closed)).toBe(true);
    expect(s.dp.counters.fastForwarded).toBe(1);
  });

  it("answers 408 to a connection that never starts its first head", async () => {
    const s = track(await startStack([{}], { headerTimeoutMs: 300 }));
    const c = await raw(s.dp.port);
    const text = await c.until((t) => t.includes("}"), "the 408");
    expect(text).toMatch(/^HTTP\/1\.1 408 /);
    expect(await eventually(() => c.closed)).toBe(true);
  });

  it("destroys its connections when the data plane closes", async () => {
    const s = track(await startStack());
    await s.herd.acquire("p0", "closing");
    const c = await raw(s.dp.port);
    c.send(get("/sse?n=1000&interval=50", "closing"));
    await c.until((t) => t.includes("data: 0"), "the first event");
    await s.dp.close();
    expect(await eventually(() => c.closed, 5_000)).toBe(true);
  });

  it("hands over an HTTP/1.1 request without Host, which node:http refuses", async () => {
    const s = track(await startStack());
    await s.herd.acquire("p0", "hostless");
    const c = await raw(s.dp.port);
    c.send(get("/whoami", "hostless"));
    await c.until((t) => t.includes('"counter"'), "the fast answer");
    c.send("GET /whoami HTTP/1.1\r\nX-Session-ID: hostless\r\n\r\n");
    await c.until((t) => t.includes("400 Bad Request"), "the 400");
    expect(s.dp.counters.fastForwarded).toBe(1);
    expect(s.dp.counters.forwarded).toBe(1);
  });

  it("hands over a request whose head arrives in pieces (node:http's header deadline applies)", async () => {
    const s = track(await startStack([{}], { headerTimeoutMs: 500 }));
    await s.herd.acquire("p0", "pieces");
    const c = await raw(s.dp.port);
    c.send("GET /whoami HTTP/1.1\r\nHost: herd\r\nX-Sess");
    await new Promise((r) => setTimeout(r, 100));
    c.send("ion-ID: pieces\r\n\r\n");
    await c.until((t) => t.includes('"counter"'), "the answer");
    c.send("GET /whoami HTTP/1.1\r\nHost: herd\r\nX-Sess");
    await c.until((t) => t.includes("408 Request Timeout"), "the 408");
    expect(s.dp.counters.fastForwarded).toBe(0);
  });

  it("forwards a chunked upload verbatim and keeps the connection", async () => {
    const s = track(await startStack());
    await s.herd.acquire("p0", "upload");
    const c = await raw(s.dp.port);
    c.send(
      "POST /echo HTTP/1.1\r\nHost: herd\r\nX-Session-ID: upload\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    c.send("5\r\nhello\r\n");
    c.send("6;ext=1\r\n world\r\n0\r\n\r\n");
    await c.until((t) => t.includes('"bodyLength":11'), "the echo");
    c.send(get("/whoami", "upload"));
    await c.until((t) => t.includes('"counter"'), "the next answer");
    expect(s.dp.counters.fastForwarded).toBe(2);
  });

  it("reconnects once when the worker closed the pinned connection while idle", async () => {
    const s = track(
      await startStack([
        {
          command: [
            process.execPath,
            fileURLToPath(new URL("./stale-socket-worker.mjs", import.meta.url)),
          ],
        },
      ]),
    );
    await s.herd.acquire("p0", "stale");
    const c = await raw(s.dp.port);
    c.send(get("/", "stale"));
    await c.until((t) => count(t, '"connection"') === 1, "the first answer");
    c.send(get("/", "stale"));
    await c.until((t) => count(t, '"connection"') === 2, "the retried answer");
    expect(c.text).toContain('"connection":2');
    expect(s.dp.counters.upstreamConnections).toBe(2);
    expect(s.dp.counters.fastForwarded).toBe(2);
  });
});
