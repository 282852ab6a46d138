// The fast path's header rewriting on the bytes must write exactly what node:http's path
// writes on strings (forward-headers.ts), for generated heads.
import { describe, expect, it } from "vitest";
import {
  headBlock,
  requestHeadersForWorker,
  responseHeadersForClient,
} from "../forward-headers.ts";
import { parseRequestHead, scanRequestHead } from "../http1/request-head.ts";
import { parseResponseHead, scanResponseHead } from "../http1/response-head.ts";
import { clientResponseHead, workerRequestHead } from "./head-rewrite.ts";

/** A small seeded generator, so a failing generated case is the same on every run. */
function seeded(seed: number) {
  let state = seed;
  const int = (n: number) => {
    state = (state * 1103515245 + 12345) >>> 0;
    return (state >>> 8) % n;
  };
  const pick = <T>(xs: readonly T[]) => xs[int(xs.length)]!;
  return { int, pick };
}

describe("clientResponseHead", () => {
  // The byte path must write exactly what the string path writes: the head as headBlock lays
  // out responseHeadersForClient's fields, then our lines, then the body.
  const NAMES = [
    "Content-Type",
    "content-length",
    "Date",
    "Server",
    "Connection",
    "Keep-Alive",
    "Transfer-Encoding",
    "TE",
    "Trailer",
    "Upgrade",
    "Proxy-Authenticate",
    "proxy-foo",
    "Set-Cookie",
    "SET-COOKIE",
    "X-Hop",
    "x-hop",
    "X-Other",
    "Cache-Control",
    "Vary",
  ];
  const VALUES = ["text/plain", "", "a=1; Path=/", "herd_session=evil", " Herd_Token=x; a=b", "1"];
  const SPACING = [": ", ":", ":  ", ":\t", ": "];
  const CONNECTION = ["keep-alive", "close", "X-Hop", "close, x-hop", "keep-alive, X-Other"];
  const STATUS = ["HTTP/1.1 200 OK", "HTTP/1.0 404 Not Found", "HTTP/1.1 204", "HTTP/1.1 500 "];

  function stringPath(text: string, framing: string, body: string): string {
    const r = parseResponseHead(Buffer.from(text, "latin1"), 0, 1 << 16, "GET");
    if (typeof r !== "object") throw new Error(`not a head: ${JSON.stringify(text)}`);
    const block = headBlock(
      `HTTP/1.1 ${r.status} ${r.reason}`,
      responseHeadersForClient(r.rawHeaders),
    );
    return `${block.slice(0, -2)}${framing}\r\n${body}`;
  }

  it("writes the string path's bytes for 2000 generated heads", () => {
    const { int, pick } = seeded(7);
    let rewritten = 0;
    for (let n = 0; n < 2000; n++) {
      const lines: string[] = [];
      for (let k = int(8); k > 0; k--) {
        const name = pick(NAMES);
        const value = name.toLowerCase() === "connection" ? pick(CONNECTION) : pick(VALUES);
        const trailing = int(4) === 0 ? " \t" : "";
        lines.push(`${name}${pick(SPACING)}${value}${trailing}\r\n`);
      }
      const status = pick(STATUS);
      const text = `${status}\r\n${lines.join("")}\r\n`;
      // Bytes before the head: the scan's offsets are into the buffer, not the head.
      const prefix = "x".repeat(int(3));
      const buf = Buffer.from(`${prefix}${text}`, "latin1");
      const scan = scanResponseHead(buf, prefix.length, 1 << 16, "GET");
      if (typeof scan !== "object") continue; // a generated Connection list can be invalid
      const framing = pick(["", "Connection: close\r\n", "Transfer-Encoding: chunked\r\n"]);
      const body = pick(["", "hello"]);
      const out = clientResponseHead(
        buf,
        scan,
        Buffer.from(framing, "latin1"),
        Buffer.from(body, "latin1"),
      );
      expect(out.toString("latin1"), JSON.stringify(text)).toBe(stringPath(text, framing, body));
      rewritten++;
    }
    expect(rewritten).toBeGreaterThan(1000);
  });
});

describe("workerRequestHead", () => {
  // As for responses: the byte path must write what headBlock(requestHeadersForWorker(...))
  // writes, with the extra fields (a peer's, our framing) after.
  const NAMES = [
    "Accept",
    "user-agent",
    "Connection",
    "Keep-Alive",
    "TE",
    "Upgrade",
    "Proxy-Authorization",
    "Cookie",
    "X-Herd-Token",
    "x-herd-pool",
    "X-Herd-Peer",
    "X-Forwarded-For",
    "x-forwarded-proto",
    "X-Forwarded-Host",
    "Referer",
    "X-Hop",
    "Content-Type",
    "X-Session-ID",
    "traceparent",
    "TraceParent",
  ];
  const VALUES = [
    "text/html",
    "",
    "10.0.0.1",
    "http://a/p?herd_token=t&x=1",
    "http://a/p?y=2",
    "a=1; herd_session=s",
  ];
  const SPACING = [": ", ":", ":  ", ":\t"];
  const CONNECTION = ["keep-alive", "close", "X-Hop", "keep-alive, x-hop, Referer"];

  it("writes the string path's bytes for 2000 generated heads", () => {
    const { int, pick } = seeded(11);
    let rewritten = 0;
    for (let n = 0; n < 2000; n++) {
      const lines = [`Host${pick(SPACING)}example:${int(9000)}\r\n`];
      for (let k = int(8); k > 0; k--) {
        const name = pick(NAMES);
        const value = name.toLowerCase() === "connection" ? pick(CONNECTION) : pick(VALUES);
        lines.splice(
          int(lines.length + 1),
          0,
          `${name}${pick(SPACING)}${value}${int(4) ? "" : " "}\r\n`,
        );
      }
      const text = `GET /x?q=${n} HTTP/1.1\r\n${lines.join("")}\r\n`;
      const prefix = "x".repeat(int(3));
      const buf = Buffer.from(`${prefix}${text}`, "latin1");
      const scan = scanRequestHead(buf, prefix.length, 1 << 16);
      const parsed = parseRequestHead(buf, prefix.length, 1 << 16);
      if (typeof scan !== "object" || typeof parsed !== "object") continue;
      const to = {
        cookie: pick([undefined, "a=1"]),
        remoteAddress: pick([undefined, "127.0.0.1"]),
        upgrade: false,
        // A traced request: herd's traceparent replaces the client's.
        traceparent: pick([undefined, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"]),
      };
      const extra = pick([
        [],
        ["Connection", "keep-alive"],
        ["X-Herd-Peer", "sig", "Transfer-Encoding", "chunked"],
      ]);
      const path = pick(["/x", "/s/abc/x?y=1"]);
      const decoded = buf.toString("latin1", prefix.length, prefix.length + scan.headBytes);
      const out = workerRequestHead(buf, decoded, scan, path, to, extra);
      const expected = headBlock(`GET ${path} HTTP/1.1`, [
        ...requestHeadersForWorker(parsed.rawHeaders, to),
        ...extra,
      ]);
      expect(out, JSON.stringify(text)).toBe(expected);
      rewritten++;
    }
    expect(rewritten).toBeGreaterThan(1000);
  });

  it("drops every field a Connection header lists, Host included, as the string path does", () => {
    const to = { cookie: undefined, remoteAddress: "127.0.0.1", upgrade: false };
    for (const listed of ["host", "X-Hop, HOST", "referer", "x-forwarded-for", "cookie, x-hop"]) {
      const text = `GET /x HTTP/1.1\r\nHost: example\r\nConnection: ${listed}\r\nX-Hop: 1\r\nReferer: http://a/?herd_token=t&b=1\r\nX-Forwarded-For: 10.0.0.1\r\nCookie: a=1\r\n\r\n`;
      const buf = Buffer.from(text, "latin1");
      const scan = scanRequestHead(buf, 0, 1 << 16);
      const parsed = parseRequestHead(buf, 0, 1 << 16);
      if (typeof scan !== "object" || typeof parsed !== "object") throw new Error(text);
      const out = workerRequestHead(buf, text.slice(0, scan.headBytes), scan, "/x", to, []);
      expect(out, listed).toBe(
        headBlock("GET /x HTTP/1.1", requestHeadersForWorker(parsed.rawHeaders, to)),
      );
      expect(out.toLowerCase().includes("\r\nhost:"), listed).toBe(!/host/i.test(listed));
    }
  });
});
