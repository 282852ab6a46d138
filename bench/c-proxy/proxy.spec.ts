// The C prototype of the fast path (proxy.c) does herd's per-request work, byte for byte: the
// same requests go once through a real herd and once through the prototype routed to the same
// worker, a capturing worker (capture-worker.mjs) that records each request's exact bytes.
// herd is the pool engine and data plane of the data-plane specs (test/dataplane/stack.ts, in
// this process, its workers real processes), not `herd serve`: its counters, which the daemon
// does not expose, prove that its fast path forwarded every request compared. What the
// worker receives and what the client receives must be equal. Nothing differs per connection:
// both proxies see the client as 127.0.0.1 (X-Forwarded-For) and neither adds a Date. The one
// answer compared by status only is an unknown session's 404: herd's comes from node:http
// (its own JSON error body, Date, Keep-Alive), the prototype's is a short JSON of its own; the
// connection stays open in both (the request after it is compared byte for byte). Every
// process (the prototype, the workers) carries the stack's leak tag and is proven gone.
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { type Stack, stackTracker, startStack } from "../../test/dataplane/stack.ts";
import { cProxy } from "../bench-tools.ts";

const WORKER = fileURLToPath(new URL("./capture-worker.mjs", import.meta.url));
const { track, stopAll } = stackTracker();
const proxies: ChildProcess[] = [];
const dirs: string[] = [];

async function stopProxy(proxy: ChildProcess): Promise<void> {
  if (proxy.exitCode !== null || proxy.signalCode !== null) return;
  const exited = once(proxy, "exit");
  proxy.stdin?.end(); // the prototype exits when its stdin closes
  const timer = setTimeout(() => proxy.kill("SIGKILL"), 10_000);
  await exited;
  clearTimeout(timer);
}

afterEach(async () => {
  for (const proxy of proxies.splice(0)) await stopProxy(proxy);
  await stopAll(); // proves no tagged process (worker, prototype) is left
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** herd (the data-plane specs' stack) with one capturing worker, session "cap" acquired on it:
 *  the stack, the worker's capture file and its port. */
async function captured(): Promise<{ s: Stack; file: string; workerPort: number }> {
  const dir = mkdtempSync(join(tmpdir(), "herd-cproto-"));
  dirs.push(dir);
  const file = join(dir, "capture.jsonl");
  writeFileSync(file, "");
  const s = track(
    await startStack(
      [{ command: [process.execPath, WORKER], max: 1, env: { CAPTURE_FILE: file } }],
      { autoAcquire: false },
    ),
  );
  const session = await s.herd.acquire("p0", "cap");
  return { s, file, workerPort: Number(session.workerAddress.split(":").pop()) };
}

/** The prototype routing `table` (SESSION=PORT), carrying the stack's leak tag: its port. */
async function startProxy(
  s: Stack,
  table: string[],
): Promise<{ port: number; proxy: ChildProcess }> {
  const proxy = spawn(cProxy(), table, {
    stdio: ["pipe", "pipe", "inherit"],
    env: { ...process.env, HERD_LEAK_TAG: s.tag },
  });
  proxies.push(proxy);
  const [line] = (await once(createInterface({ input: proxy.stdout! }), "line")) as [string];
  const port = Number(/^ready (\d+)$/.exec(line)?.[1]);
  expect(port).toBeGreaterThan(0);
  return { port, proxy };
}

/** The end of the response (after any 1xx) at the start of buf, or -1: not all of it yet. */
function responseEnd(buf: Buffer, head: boolean): number {
  let at = 0;
  for (;;) {
    const end = buf.indexOf("\r\n\r\n", at);
    if (end < 0) return -1;
    const text = buf.subarray(at, end).toString("latin1");
    const status = Number(text.slice(9, 12));
    const body = end + 4;
    if (status < 200) {
      at = body;
      continue;
    }
    if (head || status === 204 || status === 304) return body;
    if (/\r\ntransfer-encoding: *chunked/i.test(text)) {
      const last = buf.indexOf("\r\n0\r\n\r\n", body - 2);
      return last < 0 ? -1 : last + 7;
    }
    const n = body + Number(/\r\ncontent-length: *(\d+)/i.exec(text)?.[1] ?? 0);
    return buf.length >= n ? n : -1;
  }
}

/** Sends each request on one connection after the previous answer; the answers' bytes. */
async function converse(port: number, requests: string[]): Promise<string[]> {
  const socket = connect(port, "127.0.0.1");
  await once(socket, "connect");
  let buf = Buffer.alloc(0);
  let wake = () => {};
  socket.on("data", (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    wake();
  });
  socket.on("close", () => wake());
  const answers: string[] = [];
  try {
    for (const request of requests) {
      socket.write(request, "latin1");
      const head = request.startsWith("HEAD ");
      const deadline = Date.now() + 30_000; // generous: a stalled proxy fails, a slow one not
      while (responseEnd(buf, head) < 0) {
        if (socket.destroyed || Date.now() > deadline) {
          throw new Error(`no whole answer to ${JSON.stringify(request.slice(0, 40))}: ${buf}`);
        }
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, 200);
        });
      }
      const n = responseEnd(buf, head);
      answers.push(buf.subarray(0, n).toString("latin1"));
      buf = buf.subarray(n);
    }
    expect(buf.length).toBe(0); // nothing after the last answer
  } finally {
    socket.destroy();
  }
  return answers;
}

const HOST = "Host: localhost:8080\r\nX-Session-ID: cap\r\n";
/** Each scenario: requests sent on one client connection, one after another's answer. */
const SCENARIOS: Record<string, string[]> = {
  "a GET with fields the header rules drop, extend and keep": [
    `GET /cl?x=1 HTTP/1.1\r\n${HOST}User-Agent: spec\r\nX-Forwarded-For: 10.0.0.1\r\n` +
      "X-Forwarded-Proto: https\r\nX-Forwarded-Host: evil\r\nCookie: a=b; c=d\r\n" +
      "X-Herd-Token: nope\r\nKeep-Alive: timeout=1\r\nTE: trailers\r\nProxy-Authorization: x\r\n" +
      "X-Odd:spaced  \r\nAuthorization: Bearer worker-key\r\nx-forwarded-for: 10.0.0.2\r\n\r\n",
  ],
  "a POST with a Content-Length body": [
    `POST /echo HTTP/1.1\r\n${HOST}Content-Type: text/plain\r\nContent-Length: 11\r\n\r\nhello world`,
  ],
  "a chunked POST": [
    `POST /echo HTTP/1.1\r\n${HOST}Transfer-Encoding: chunked\r\n\r\n` +
      '5;a=b\r\nhello\r\n6;q="x y"\r\n world\r\n0\r\n\r\n',
  ],
  "several requests on one kept-alive connection, each response framing": [
    "/cl",
    "/chunked",
    "/204",
    "/bare",
    "/hints",
    "/old",
  ]
    .map((path) => `GET ${path} HTTP/1.1\r\n${HOST}\r\n`)
    .concat([
      `HEAD /cl HTTP/1.1\r\n${HOST}\r\n`,
      `DELETE /thing HTTP/1.1\r\n${HOST}Content-Length: 0\r\n\r\n`,
      `PUT /thing HTTP/1.1\r\n${HOST}Content-Length: 3\r\n\r\nabc`,
    ]),
  "a Connection header listing a field": [
    `GET /x HTTP/1.1\r\n${HOST}Connection: keep-alive, X-Foo\r\nX-Foo: secret\r\nX-Bar: kept\r\n\r\n`,
  ],
};
const UNKNOWN = [
  "GET /x HTTP/1.1\r\nHost: localhost:8080\r\nX-Session-ID: ghost\r\n\r\n",
  `GET /after HTTP/1.1\r\n${HOST}\r\n`,
];

interface Run {
  /** Per scenario: the client's answers, and the requests the worker received meanwhile. */
  scenarios: Map<string, { answers: string[]; received: string[] }>;
  unknown: { answers: string[]; received: string[] };
}

/** What the worker appended to the capture file since `from` lines: requests, decoded. */
function capturedSince(file: string, from: number): { lines: number; received: string[] } {
  const lines = readFileSync(file, "utf8").split("\n").filter(Boolean);
  const received = lines
    .slice(from)
    .map((l) => Buffer.from((JSON.parse(l) as { request: string }).request, "base64"))
    .map((bytes) => bytes.toString("latin1"));
  return { lines: lines.length, received };
}

async function runAll(port: number, file: string): Promise<Run> {
  const scenarios = new Map<string, { answers: string[]; received: string[] }>();
  let seen = capturedSince(file, 0).lines;
  const one = async (requests: string[]) => {
    const answers = await converse(port, requests);
    const { lines, received } = capturedSince(file, seen);
    seen = lines;
    return { answers, received };
  };
  for (const [name, requests] of Object.entries(SCENARIOS)) {
    scenarios.set(name, await one(requests));
  }
  return { scenarios, unknown: await one(UNKNOWN) };
}

describe("the C prototype of the fast path (bench/c-proxy)", () => {
  it("sends the worker and the client the same bytes as herd does", async () => {
    const { s, file, workerPort } = await captured();
    const before = s.dp.counters.fastForwarded;
    const viaHerd = await runAll(Number(new URL(s.url).port), file);
    const forwarded = [...viaHerd.scenarios.values()].reduce((n, r) => n + r.answers.length, 0);
    // herd's fast path forwarded every one of them (the 404's neighbour went through node:http).
    expect(s.dp.counters.fastForwarded - before).toBe(forwarded);

    const { port } = await startProxy(s, [`cap=${workerPort}`]);
    const viaProxy = await runAll(port, file);

    // Not vacuous: herd's own bytes show its rules at work.
    const first = viaHerd.scenarios.get(
      "a GET with fields the header rules drop, extend and keep",
    )!;
    expect(first.received[0]).toContain("X-Forwarded-For: 10.0.0.1, 10.0.0.2, 127.0.0.1\r\n");
    expect(first.received[0]).not.toContain("Keep-Alive");
    expect(first.answers[0]).toContain("Connection: keep-alive\r\nKeep-Alive: timeout=5\r\n");
    expect(first.answers[0]).not.toContain("X-Drop");
    expect(first.answers[0]).not.toContain("herd_token");

    for (const [name, herd] of viaHerd.scenarios) {
      const proxy = viaProxy.scenarios.get(name)!;
      expect(herd.received.length, name).toBeGreaterThan(0);
      expect(proxy.received, `${name}: what the worker received`).toEqual(herd.received);
      expect(proxy.answers, `${name}: what the client received`).toEqual(herd.answers);
    }
    // The unknown session: 404 from both, the connection kept (its next request is served).
    for (const run of [viaHerd, viaProxy]) {
      expect(run.unknown.answers[0]).toMatch(/^HTTP\/1\.1 404 /);
      expect(run.unknown.answers[1]).toMatch(/^HTTP\/1\.1 200 /);
      expect(run.unknown.received).toHaveLength(1);
      expect(run.unknown.received[0]).toMatch(/^GET \/after HTTP\/1\.1\r\n/);
    }
  });

  it("keeps every byte of a large upload and a large download when both back up", async () => {
    const { s, file, workerPort } = await captured();
    const { port, proxy } = await startProxy(s, [`cap=${workerPort}`]);
    // An upload of 8 MiB in one go (the worker reads it as fast as the proxy sends it)...
    const upload = randomBytes(8 * 1024 * 1024);
    const head = `POST /echo HTTP/1.1\r\n${HOST}Content-Length: ${upload.length}\r\n\r\n`;
    const [answer] = await converse(port, [
      Buffer.concat([Buffer.from(head), upload]).toString("latin1"),
    ]);
    expect(answer).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    const [received] = capturedSince(file, 0).received;
    expect(Buffer.from(received!, "latin1").subarray(-upload.length).equals(upload)).toBe(true);
    // ... and a 32 MiB download to a client that does not read at first: every buffer on the
    // way fills, the prototype's write to the client comes up short and it stops reading the
    // worker until EPOLLOUT.
    const n = 32 * 1024 * 1024;
    const socket = connect(port, "127.0.0.1");
    await once(socket, "connect");
    socket.pause();
    socket.write(`GET /big?n=${n} HTTP/1.1\r\n${HOST}\r\n`);
    await new Promise((r) => setTimeout(r, 500));
    const chunks: Buffer[] = [];
    let length = 0;
    let bodyStart = -1;
    const all = new Promise<void>((resolve, reject) => {
      // Generous: a proxy that lost a write interest stalls for good, not for a while.
      const timer = setTimeout(() => reject(new Error(`stalled at ${length} bytes`)), 60_000);
      socket.on("data", (chunk: Buffer) => {
        chunks.push(chunk);
        length += chunk.length;
        if (bodyStart < 0) {
          const end = Buffer.concat(chunks).indexOf("\r\n\r\n");
          if (end >= 0) bodyStart = end + 4;
        }
        if (bodyStart >= 0 && length - bodyStart >= n) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    socket.resume();
    await all;
    socket.destroy();
    const body = Buffer.concat(chunks).subarray(bodyStart);
    expect(body.length).toBe(n);
    let wrong = -1;
    for (let i = 0; i < n && wrong < 0; i++) if (body[i] !== i % 251) wrong = i;
    expect(wrong).toBe(-1);
    // It stopped reading the worker while the client did not read: what it held stayed about
    // one read's worth, not the 32 MiB that went through it.
    const peak = Number(
      /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${proxy.pid}/status`, "utf8"))?.[1],
    );
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThan(12 * 1024);
  }, 120_000);

  it("refuses malformed and oversized input within its bounds, and goes on serving", async () => {
    const { s, file, workerPort } = await captured();
    const { port } = await startProxy(s, [`cap=${workerPort}`]);
    const refused: [string, RegExp][] = [
      [`GET / HTTP/1.1\r\n${HOST}X-Long: ${"a".repeat(20_000)}\r\n\r\n`, / 431 /],
      [`POST / HTTP/1.1\r\n${HOST}Content-Length: 99999999999999999\r\n\r\n`, / 400 /],
      [`POST / HTTP/1.1\r\n${HOST}Content-Length: 1\r\nContent-Length: 1\r\n\r\nx`, / 400 /],
      [
        `POST / HTTP/1.1\r\n${HOST}Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n`,
        / 400 /,
      ],
      [`GET / HTTP/1.1\r\nX-Session-ID: cap\r\n\r\n`, / 400 /], // no Host
      [`GET / HTTP/1.1\r\n${HOST}Bad Name: x\r\n\r\n`, / 400 /],
      [`GET / HTTP/1.1\r\nHost: example.com\r\nX-Session-ID: cap\r\n\r\n`, / 421 /],
      [`GET / HTTP/1.1\r\nHost: a\r\nX-Session-ID: no/slash\r\n\r\n`, / 400 /],
    ];
    for (const [request, status] of refused) {
      const socket = connect(port, "127.0.0.1");
      let text = "";
      socket.on("data", (d: Buffer) => {
        text += d.toString("latin1");
      });
      socket.write(request, "latin1");
      await once(socket, "end"); // answered, then closed by the prototype
      socket.destroy();
      expect(text, request.slice(0, 60)).toMatch(status);
    }
    // A chunk size past 2^53 - 1 (17 hex digits) cuts the exchange: never a request the
    // worker frames differently.
    const socket = connect(port, "127.0.0.1");
    socket.on("data", () => {});
    socket.write(
      `POST /echo HTTP/1.1\r\n${HOST}Transfer-Encoding: chunked\r\n\r\n1ffffffffffffffff\r\n`,
    );
    await once(socket, "close");
    expect(capturedSince(file, 0).received).toHaveLength(0);
    // Still serving.
    const [answer] = await converse(port, [`GET /cl HTTP/1.1\r\n${HOST}\r\n`]);
    expect(answer).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
  });
});
