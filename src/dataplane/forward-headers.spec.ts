import { describe, expect, it } from "vitest";
import {
  clientResponseHead,
  headBlock,
  requestHeadersForWorker,
  responseHeadersForClient,
  scrubReferer,
  setsHerdCookie,
  workerRequestHead,
} from "./forward-headers.ts";
import { parseRequestHead, scanRequestHead } from "./http1/request-head.ts";
import { parseResponseHead, scanResponseHead } from "./http1/response-head.ts";

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

function pairs(raw: string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i < raw.length; i += 2) out.push([raw[i]!, raw[i + 1]!]);
  return out;
}

describe("requestHeadersForWorker", () => {
  const raw = [
    "Host",
    "example:8080",
    "Connection",
    "keep-alive, X-Secret",
    "X-Secret",
    "drop me",
    "Keep-Alive",
    "timeout=5",
    "TE",
    "trailers",
    "Trailer",
    "X-T",
    "Transfer-Encoding",
    "chunked",
    "Proxy-Authorization",
    "Basic x",
    "Upgrade",
    "websocket",
    "X-Herd-Token",
    "secret",
    "x-herd-pool",
    "p",
    "Cookie",
    "herd_token=secret; a=b",
    "X-Forwarded-For",
    "10.0.0.1",
    "X-Forwarded-Proto",
    "https",
    "X-Custom",
    "1",
    "X-Custom",
    "2",
  ];

  it("drops hop-by-hop and herd headers, keeps order and duplicates, sets X-Forwarded-*", () => {
    const out = pairs(
      requestHeadersForWorker(raw, { cookie: "a=b", remoteAddress: "127.0.0.9", upgrade: false }),
    );
    expect(out).toEqual([
      ["Host", "example:8080"],
      ["X-Custom", "1"],
      ["X-Custom", "2"],
      ["Cookie", "a=b"],
      ["X-Forwarded-For", "10.0.0.1, 127.0.0.9"],
      ["X-Forwarded-Proto", "http"],
      ["X-Forwarded-Host", "example:8080"],
    ]);
  });

  it("keeps Connection: Upgrade and Upgrade for a handshake", () => {
    const out = pairs(
      requestHeadersForWorker(raw, { cookie: undefined, remoteAddress: "::1", upgrade: true }),
    );
    expect(out.slice(-2)).toEqual([
      ["Connection", "Upgrade"],
      ["Upgrade", "websocket"],
    ]);
    expect(out.find(([n]) => n.toLowerCase() === "cookie")).toBeUndefined();
  });
});

describe("Referer towards the worker", () => {
  it("loses herd's parameters and keeps the rest verbatim", () => {
    const referer =
      "http://h:8080/s/alice/page?a=1&herd_token=SECRET&b=x%20y+z&herd_session=alice#frag";
    const out = pairs(
      requestHeadersForWorker(["Referer", referer], {
        cookie: undefined,
        remoteAddress: "127.0.0.1",
        upgrade: false,
      }),
    );
    expect(out[0]).toEqual(["Referer", "http://h:8080/s/alice/page?a=1&b=x%20y+z#frag"]);
  });

  it.each([
    ["no query", "http://h/p", "http://h/p"],
    ["nothing of herd's", "http://h/p?a=1&herd_tokenx=2", "http://h/p?a=1&herd_tokenx=2"],
    ["only the token", "http://h/p?herd_token=T", "http://h/p"],
    ["percent-encoded name", "http://h/p?herd%5Ftoken=T&a=1", "http://h/p?a=1"],
    ["repeated, valueless", "http://h/p?herd_token=A&herd_token&x", "http://h/p?x"],
    [
      "token before a fragment",
      "http://h/p?herd_token=T#x?herd_token=y",
      "http://h/p#x?herd_token=y",
    ],
    ["malformed encoding kept", "http://h/p?%E0=1&herd_token=T", "http://h/p?%E0=1"],
  ])("%s", (_name, input, expected) => {
    expect(scrubReferer(input)).toBe(expected);
  });
});

describe("setsHerdCookie", () => {
  it.each([
    ["herd_session=attacker; Path=/", true],
    ["herd_token=x", true],
    ["  herd_session =x", true],
    ["HERD_Session=x", true],
    ["herd_anything=x; HttpOnly", true],
    ["herd_session", true],
    ["app=herd_session", false],
    ["session=1; Path=/herd_", false],
    ["herdsession=1", false],
    ["__Host-herd_session=1", false],
  ])("%s → %s", (value, herds) => {
    expect(setsHerdCookie(value)).toBe(herds);
  });
});

describe("responseHeadersForClient", () => {
  it("drops Set-Cookie of herd's cookies, on a 101 too, and keeps the worker's own", () => {
    const raw = [
      "Set-Cookie",
      "herd_session=attacker; Path=/",
      "set-cookie",
      "app=1; Path=/",
      "SET-COOKIE",
      "Herd_Token=stolen",
    ];
    expect(pairs(responseHeadersForClient(raw))).toEqual([["set-cookie", "app=1; Path=/"]]);
    expect(pairs(responseHeadersForClient(["Upgrade", "websocket", ...raw], true))).toEqual([
      ["Upgrade", "websocket"],
      ["set-cookie", "app=1; Path=/"],
    ]);
  });

  it("drops hop-by-hop headers and those Connection lists", () => {
    const raw = [
      "Content-Type",
      "text/plain",
      "Connection",
      "close, X-Hop",
      "X-Hop",
      "1",
      "Transfer-Encoding",
      "chunked",
      "Set-Cookie",
      "a=1",
      "Set-Cookie",
      "b=2",
    ];
    expect(pairs(responseHeadersForClient(raw))).toEqual([
      ["Content-Type", "text/plain"],
      ["Set-Cookie", "a=1"],
      ["Set-Cookie", "b=2"],
    ]);
  });

  it("keeps Connection and Upgrade on a 101", () => {
    const raw = ["Upgrade", "websocket", "Connection", "Upgrade", "Sec-WebSocket-Accept", "x"];
    expect(responseHeadersForClient(raw, true)).toEqual(raw);
  });
});

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
});
