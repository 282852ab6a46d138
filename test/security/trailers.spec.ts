// Issue 18, attack 7: chunked trailers passed the fast path untouched. A worker's response
// trailer `Set-Cookie: herd_session=…` reached the client, and a client's request trailer
// `X-Herd-Token` reached the worker (node:http's path drops every trailer). Now the fast path
// passes trailer fields by the same rules as header fields, and node:http's path still drops
// them; each case runs on both paths (`Expect: 100-continue` sends a request to node:http), and
// `counters.fastForwarded` proves which one answered.
import { connect } from "node:net";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { stackTracker, startStack } from "../dataplane/stack.ts";

const { track, stopAll } = stackTracker();
afterEach(stopAll);

const RAW_WORKER = fileURLToPath(new URL("../dataplane/raw-worker.mjs", import.meta.url));

/**
 * Sends `request` on a new connection, in pieces split at each "|" (a pause between them, so
 * they likely arrive in separate reads), and returns everything read until the server closes.
 */
function exchange(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    let text = "";
    socket.setEncoding("latin1");
    socket.on("data", (d: string) => (text += d));
    socket.once("error", reject);
    socket.once("close", () => resolve(text));
    const pieces = request.split("|");
    const next = () => {
      socket.write(pieces.shift()!);
      if (pieces.length > 0) setTimeout(next, 50);
    };
    next();
  });
}

const PATHS = [
  { path: "fast", extra: "", fast: 1 },
  { path: "node:http", extra: "Expect: 100-continue\r\n", fast: 0 },
] as const;

describe.each(PATHS)("trailers on the $path path", ({ extra, fast }) => {
  it("a worker's response trailer cannot set herd's cookies", async () => {
    const s = track(await startStack([{ command: [process.execPath, RAW_WORKER] }]));
    await s.herd.acquire("p0", "t");
    const answer =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n" +
      "Set-Cookie: herd_session=attacker; Path=/\r\nX-Checksum: abc\r\n\r\n";
    const r = encodeURIComponent(Buffer.from(answer, "latin1").toString("base64"));
    const got = await exchange(
      s.dp.port,
      `GET /raw?r=${r} HTTP/1.1\r\nHost: x\r\nX-Session-ID: t\r\nConnection: close\r\n${extra}\r\n`,
    );
    expect(got).toContain("hello");
    expect(got).not.toMatch(/herd_session/i);
    if (fast) expect(got).toMatch(/\r\n0\r\nX-Checksum: abc\r\n\r\n$/);
    expect(s.dp.counters.fastForwarded).toBe(fast);
  });

  it("a client's request trailer cannot carry herd's token to the worker", async () => {
    const s = track(await startStack());
    const got = await exchange(
      s.dp.port,
      "POST /echo HTTP/1.1\r\nHost: x\r\nX-Session-ID: t\r\nConnection: close\r\n" +
        `Transfer-Encoding: chunked\r\n${extra}\r\n5\r\nhello\r\n0\r\n|X-He` +
        "rd-Token: s3cret\r\nCookie: herd_t|oken=s3cret\r\nX-Note: ok\r\n|\r\n",
    );
    const body = got.slice(got.lastIndexOf("\r\n\r\n") + 4);
    const echoed = JSON.parse(body) as { bodyLength: number; trailers: string[] };
    expect(echoed.bodyLength).toBe(5);
    expect(echoed.trailers.join("\n")).not.toMatch(/s3cret|herd/i);
    if (fast) expect(echoed.trailers).toEqual(["X-Note", "ok"]);
    expect(s.dp.counters.fastForwarded).toBe(fast);
  });
});
