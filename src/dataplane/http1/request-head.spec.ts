// Differential tests of the strict request-head parser against llhttp, driven directly through
// `_http_common`'s HTTPParser (test/helpers/llhttp.ts), not a server on a socket: the same
// native parser node:http uses, thousands of cases a second, deterministic. The property:
// whatever parseRequestHead accepts, llhttp accepts with the same meaning — the same head fields
// and the same message boundaries (each case is followed by a sentinel message that must start
// exactly where ours says the body ends). Cases come from a seeded grammar of valid parts plus
// the request-smuggling classics as mutations (test/helpers/http1-cases.ts); the common heads
// real clients send must be accepted, or the fast path would never run — both a written list
// and heads captured from real ones (node:http, fetch, ws, Python's urllib) on a loopback
// socket, which is closed and awaited (the one child process too).
import { once } from "node:events";
import { request } from "node:http";
import { type AddressInfo, createServer as createTcpServer, type Socket } from "node:net";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import WebSocket from "ws";
import {
  bodyFor,
  bytes,
  fieldLines,
  MAX,
  mutate,
  NEXT_REQUEST,
  prng,
  type Rng,
} from "../../../test/helpers/http1-cases.ts";
import { REPO_ROOT, runCaptured } from "../../../test/helpers/index.ts";
import { llhttp } from "../../../test/helpers/llhttp.ts";
import { parseRequestHead, type RequestHead } from "./request-head.ts";

/** Asserts llhttp reads `head` (+ a body that fits our framing) exactly as we did. */
function expectLlhttpAgrees(text: string, ours: RequestHead): void {
  const head = text.slice(0, ours.headBytes);
  const { body, whole } = bodyFor(ours.body);
  // llhttp stops at an upgrade and refuses data after a message that closes the connection.
  const next = whole && ours.keepAlive && !ours.upgrade;
  const stream = head + body + (next ? NEXT_REQUEST : "");
  const ll = llhttp("request", bytes(stream));
  const context = JSON.stringify(text);
  expect(ll.error, context).toBeUndefined();
  const m = ll.messages[0];
  expect(m, context).toBeDefined();
  expect(
    {
      method: m!.method,
      target: m!.url,
      minor: m!.minor,
      rawHeaders: m!.rawHeaders,
      keepAlive: m!.keepAlive,
      upgrade: m!.upgrade,
      body: m!.body.toString("latin1"),
      complete: m!.complete,
    },
    context,
  ).toEqual({
    method: ours.method,
    target: ours.target,
    minor: ours.minor,
    rawHeaders: ours.rawHeaders,
    keepAlive: ours.keepAlive,
    upgrade: ours.upgrade,
    body: ours.body.kind === "chunked" ? "abc" : body,
    complete: whole,
  });
  if (ours.upgrade) expect(ll.consumed, context).toBe(ours.headBytes);
  expect(ll.messages.length, context).toBe(next ? 2 : 1);
  if (next) expect(ll.messages[1]!.url, context).toBe("/next");
}

/** Heads real clients send: each must take the fast path. */
const COMMON_REQUESTS = [
  // curl 8
  "GET /api/v1/items?page=2 HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\nX-Session-ID: user-42\r\n\r\n",
  // wrk
  "GET / HTTP/1.1\r\nHost: 127.0.0.1:9000\r\nX-Session-ID: bench-1\r\n\r\n",
  // Chrome navigation
  'GET /s/abc123/index.html HTTP/1.1\r\nHost: example.com\r\nConnection: keep-alive\r\nsec-ch-ua: "Chromium";v="131", "Not_A Brand";v="24"\r\nsec-ch-ua-mobile: ?0\r\nsec-ch-ua-platform: "Linux"\r\nUpgrade-Insecure-Requests: 1\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36\r\nAccept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8\r\nSec-Fetch-Site: none\r\nSec-Fetch-Mode: navigate\r\nSec-Fetch-User: ?1\r\nSec-Fetch-Dest: document\r\nAccept-Encoding: gzip, deflate, br, zstd\r\nAccept-Language: en-US,en;q=0.9\r\nCookie: herd_session=abc123; theme=dark\r\n\r\n',
  // Firefox XHR with a JSON body
  "POST /api/run HTTP/1.1\r\nHost: example.com\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0\r\nAccept: application/json\r\nAccept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br\r\nContent-Type: application/json\r\nContent-Length: 27\r\nOrigin: https://example.com\r\nConnection: keep-alive\r\nReferer: https://example.com/app\r\nCookie: herd_session=abc\r\n\r\n",
  // Node fetch (undici) streaming upload
  "PUT /upload HTTP/1.1\r\nhost: 127.0.0.1:8080\r\nconnection: keep-alive\r\ncontent-type: application/octet-stream\r\naccept: */*\r\naccept-language: *\r\nsec-fetch-mode: cors\r\nuser-agent: node\r\naccept-encoding: gzip, deflate\r\ntransfer-encoding: chunked\r\n\r\n",
  // Node http.request with Expect
  "POST /big HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1048576\r\nHost: localhost:8080\r\nConnection: keep-alive\r\n\r\n",
  // Browser WebSocket handshake
  "GET /s/abc/ws HTTP/1.1\r\nHost: example.com\r\nConnection: Upgrade\r\nPragma: no-cache\r\nCache-Control: no-cache\r\nUpgrade: websocket\r\nOrigin: https://example.com\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n",
  // Firefox WebSocket handshake
  "GET /chat HTTP/1.1\r\nHost: example.com\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\n\r\n",
  // ApacheBench (HTTP/1.0 keep-alive)
  "GET /ping HTTP/1.0\r\nConnection: Keep-Alive\r\nHost: 127.0.0.1:8080\r\nUser-Agent: ApacheBench/2.3\r\nAccept: */*\r\n\r\n",
  // HTTP/1.0 without keep-alive
  "GET /ping HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n",
  // Go net/http client
  "DELETE /v1/items/7 HTTP/1.1\r\nHost: api:8080\r\nUser-Agent: Go-http-client/1.1\r\nContent-Length: 0\r\nAuthorization: Bearer abc.def.ghi\r\nAccept-Encoding: gzip\r\n\r\n",
  // python requests
  "PATCH /x HTTP/1.1\r\nHost: h\r\nUser-Agent: python-requests/2.32.3\r\nAccept-Encoding: gzip, deflate\r\nAccept: */*\r\nConnection: keep-alive\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n",
  "HEAD /health HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
  "OPTIONS /api HTTP/1.1\r\nHost: h\r\nAccess-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: content-type\r\nOrigin: https://a.example\r\n\r\n",
  "GET /a%20b/%E2%9C%93?q=%22x%22&y=[1]|{2} HTTP/1.1\r\nHost: h\r\nX-Herd-Token: t0k3n\r\nX-Herd-Pool: browser\r\nX-Empty:\r\n\r\n",
];

const METHODS = [
  "GET",
  "GET",
  "POST",
  "PUT",
  "HEAD",
  "DELETE",
  "OPTIONS",
  "PATCH",
  "TRACE",
  "CONNECT",
  "get",
  "PROPFIND",
  "PRI",
  "GETT",
  "ACL",
  "SOURCE",
  "QUERY",
];
const TARGETS = [
  "/",
  "/",
  "/index.html",
  "/a/b?c=d&e=f",
  "/s/sess-1/x",
  "/%7Efoo?x=%20",
  "/a b",
  "*",
  "http://example.com/x",
  "example.com:443",
  "/a#frag",
  "/\xe4",
  "/a\tb",
  "/a\fb",
  "/{x}|^`",
  "",
  "//double",
  "/?",
  "/a?b?c",
  '/"<>\\',
  "/a;b,c=d@e:f!$&'()*+",
  "/~user/%zz",
];
const VERSIONS = [
  "HTTP/1.1",
  "HTTP/1.1",
  "HTTP/1.1",
  "HTTP/1.0",
  "HTTP/1.2",
  "HTTP/2.0",
  "HTTP/0.9",
  "http/1.1",
  "HTTP/1.1 ",
  "HTTP/11",
  "HTTP/1.10",
  "HTTP/3.0",
];
const OTHER_HEADERS: [string, string[]][] = [
  ["User-Agent", ["curl/8.5.0", "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/133.0"]],
  ["Accept", ["*/*", "text/html,application/xhtml+xml;q=0.9"]],
  ["Accept-Encoding", ["gzip, deflate, br"]],
  ["Cookie", ["herd_session=abc; theme=dark", "a=\xe4\xf6"]],
  ["X-Session-ID", ["sess-1", "SESS_2"]],
  ["Content-Type", ["application/json", "text/plain; charset=utf-8"]],
  ["Upgrade", ["websocket", "h2c", ""]],
  ["Expect", ["100-continue", "100-Continue", "200-ok", ""]],
  ["Keep-Alive", ["timeout=5"]],
  ["Proxy-Connection", ["keep-alive", "close"]],
  ["X-Empty", [""]],
  ["x-lower", ["v"]],
  ["Sec-WebSocket-Key", ["dGhlIHNhbXBsZSBub25jZQ=="]],
  ["Host", ["other.example"]],
  ["TE", ["trailers"]],
  ["Trailer", ["X-Checksum"]],
];

function requestText(r: Rng): string {
  const lines = fieldLines(r, OTHER_HEADERS);
  if (r.next() < 0.9) lines.push(`Host: ${r.pick(["localhost:8080", "example.com", "a", ""])}`);
  for (let k = lines.length - 1; k > 0; k--) {
    const j = r.int(k + 1);
    [lines[k], lines[j]] = [lines[j]!, lines[k]!];
  }
  const method = r.next() < 0.7 ? "GET" : r.pick(METHODS);
  const target = r.next() < 0.6 ? "/" : r.pick(TARGETS);
  const version = r.next() < 0.7 ? "HTTP/1.1" : r.pick(VERSIONS);
  return `${method} ${target} ${version}\r\n${lines.map((l) => `${l}\r\n`).join("")}\r\n`;
}

describe("parseRequestHead", () => {
  it("accepts the common heads of real clients exactly as llhttp reads them", () => {
    for (const text of COMMON_REQUESTS) {
      const ours = parseRequestHead(bytes(text), 0, MAX);
      expect(typeof ours, JSON.stringify(text)).toBe("object");
      expectLlhttpAgrees(text, ours as RequestHead);
      expect((ours as RequestHead).headBytes).toBe(text.length);
    }
  });

  it("reads the fields a proxy needs", () => {
    const ws = parseRequestHead(bytes(COMMON_REQUESTS[6]!), 0, MAX) as RequestHead;
    expect(ws).toMatchObject({
      method: "GET",
      target: "/s/abc/ws",
      upgrade: true,
      keepAlive: true,
    });
    const put = parseRequestHead(bytes(COMMON_REQUESTS[4]!), 0, MAX) as RequestHead;
    expect(put.body).toEqual({ kind: "chunked" });
    const big = parseRequestHead(bytes(COMMON_REQUESTS[5]!), 0, MAX) as RequestHead;
    expect(big).toMatchObject({ expectContinue: true, body: { kind: "length", length: 1048576 } });
    const ab = parseRequestHead(bytes(COMMON_REQUESTS[8]!), 0, MAX) as RequestHead;
    expect(ab).toMatchObject({ minor: 0, keepAlive: true, body: { kind: "none" } });
    const h10 = parseRequestHead(bytes(COMMON_REQUESTS[9]!), 0, MAX) as RequestHead;
    expect(h10.keepAlive).toBe(false);
    const head = parseRequestHead(bytes(COMMON_REQUESTS[12]!), 0, MAX) as RequestHead;
    expect(head).toMatchObject({ method: "HEAD", keepAlive: false });
    const del = parseRequestHead(bytes(COMMON_REQUESTS[10]!), 0, MAX) as RequestHead;
    expect(del.body).toEqual({ kind: "none" });
  });

  it("parses from an offset (pipelined requests) and says incomplete for every prefix", () => {
    const first = COMMON_REQUESTS[3]!;
    const second = COMMON_REQUESTS[1]!;
    const buf = bytes(`${first}${"b".repeat(27)}${second}`);
    const a = parseRequestHead(buf, 0, MAX) as RequestHead;
    const b = parseRequestHead(buf, a.headBytes + 27, MAX) as RequestHead;
    expect(b).toMatchObject({ target: "/", headBytes: second.length });
    for (const text of COMMON_REQUESTS) {
      const whole = bytes(text);
      for (let k = 0; k < whole.length; k++) {
        expect(parseRequestHead(whole.subarray(0, k), 0, MAX), `${k} of ${text}`).toBe(
          "incomplete",
        );
      }
    }
  });

  it("says too-large once the head cannot fit maxHeadBytes, and not before", () => {
    const text = bytes(COMMON_REQUESTS[2]!);
    expect(parseRequestHead(text, 0, text.length)).toMatchObject({ headBytes: text.length });
    expect(parseRequestHead(text, 0, text.length - 1)).toBe("too-large");
    expect(parseRequestHead(text.subarray(0, 100), 0, 100)).toBe("too-large");
    expect(parseRequestHead(text.subarray(0, 99), 0, 100)).toBe("incomplete");
    const huge = bytes(`GET / HTTP/1.1\r\nHost: a\r\nX: ${"x".repeat(MAX)}`);
    expect(parseRequestHead(huge, 0, MAX)).toBe("too-large");
  });

  it("declines the smuggling classics and everything odd", () => {
    const declined = [
      // CL.TE, TE.CL, TE obfuscations
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 6\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked ,\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n",
      "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
      // Content-Length games
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 05\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999\r\n\r\n",
      // line and byte damage
      "GET / HTTP/1.1\nHost: a\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nX: b\0\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nX: b\x7f\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nX : b\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n folded\r\n\r\n",
      "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
      // request line
      "GET / HTTP/1.2\r\nHost: a\r\n\r\n",
      "GET / HTTP/2.0\r\nHost: a\r\n\r\n",
      "GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
      "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n",
      "GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n",
      "GET * HTTP/1.1\r\nHost: a\r\n\r\n",
      "GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n",
      "CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n",
      "PROPFIND / HTTP/1.1\r\nHost: a\r\n\r\n",
      "get / HTTP/1.1\r\nHost: a\r\n\r\n",
      // what node:http itself answers or picks between
      "GET / HTTP/1.1\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, close\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nConnection: close foo\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nProxy-Connection: close\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: x\r\nContent-Length: 3\r\n\r\n",
    ];
    for (const text of declined) {
      expect(parseRequestHead(bytes(text), 0, MAX), JSON.stringify(text)).toBe("decline");
    }
  });

  it("differential fuzz: every head we accept, llhttp accepts identically", () => {
    const r = prng(0x13a);
    const cases = 4000;
    let accepted = 0;
    let llAccepted = 0;
    let declinedButLl = 0;
    let common = 0;
    let commonAccepted = 0;
    for (let n = 0; n < cases; n++) {
      const base = requestText(r);
      const text = mutate(base, r);
      const buf = bytes(text);
      const ours = parseRequestHead(buf, 0, MAX);
      const ll = llhttp("request", buf);
      const llOk = ll.error === undefined && ll.messages.length > 0;
      if (llOk) llAccepted++;
      if (typeof ours === "object") {
        accepted++;
        expectLlhttpAgrees(text, ours);
      } else if (ours === "incomplete") {
        expect(ll.messages.length, JSON.stringify(text)).toBe(0);
      } else if (ours === "decline" && llOk) {
        declinedButLl++;
      }
      // Unmutated heads of plain GETs with the usual headers: the common case must be fast.
      if (text === base && isPlain(text)) {
        common++;
        if (typeof ours === "object") commonAccepted++;
      }
    }
    // The grammar must exercise both verdicts, and plain heads always take the fast path.
    expect(accepted).toBeGreaterThan(cases / 10);
    expect(declinedButLl).toBeGreaterThan(0);
    expect(common).toBeGreaterThan(200);
    expect(commonAccepted).toBe(common);
    console.log(
      `requests: ${cases} cases, llhttp accepted ${llAccepted}, we accepted ${accepted}, declined ${declinedButLl} llhttp took; plain ${commonAccepted}/${common}`,
    );
  });
});

/** A plain head, defined apart from the parser: a usual method, an origin-form target of
 *  ordinary characters, HTTP/1.1, one Host, the usual headers with printable values, at most
 *  one of a decimal Content-Length or `Transfer-Encoding: chunked`, Connection keep-alive or
 *  close. Every such head must take the fast path. */
function isPlain(text: string): boolean {
  const [line, ...fields] = text.slice(0, -4).split("\r\n");
  if (!/^(GET|POST|PUT|DELETE|HEAD|OPTIONS|PATCH) \/[\w/.~%?=&-]* HTTP\/1\.1$/.test(line!)) {
    return false;
  }
  const seen = new Map<string, number>();
  for (const f of fields) {
    const m = /^([\w-]+): ([\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?)$/.exec(f);
    if (m === null) return false;
    const name = m[1]!.toLowerCase();
    const value = m[2]!;
    seen.set(name, (seen.get(name) ?? 0) + 1);
    const ok =
      [
        "user-agent",
        "accept",
        "accept-encoding",
        "x-session-id",
        "content-type",
        "cookie",
        "host",
      ].includes(name) ||
      (name === "content-length" && /^(0|[1-9][0-9]{0,9})$/.test(value)) ||
      (name === "transfer-encoding" && value === "chunked") ||
      (name === "connection" && /^(keep-alive|close)$/i.test(value));
    if (!ok) return false;
  }
  for (const name of ["host", "content-length", "transfer-encoding", "connection"]) {
    if ((seen.get(name) ?? 0) > 1) return false;
  }
  return seen.get("host") === 1 && !(seen.has("content-length") && seen.has("transfer-encoding"));
}

describe("heads real clients and servers send", () => {
  /** A TCP server that records each connection's request head and answers 200, then closes. */
  async function headRecorder() {
    const heads: string[] = [];
    const sockets = new Set<Socket>();
    const server = createTcpServer((socket) => {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
      socket.on("error", () => {});
      let got = "";
      socket.on("data", (d) => {
        if (got.includes("\r\n\r\n")) return;
        got += d.toString("latin1");
        const end = got.indexOf("\r\n\r\n");
        if (end < 0) return;
        heads.push(got.slice(0, end + 4));
        socket.end("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
      });
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const port = (server.address() as AddressInfo).port;
    return {
      url: `http://127.0.0.1:${port}`,
      heads,
      close: async () => {
        for (const s of sockets) s.destroy();
        server.close();
        await once(server, "close");
      },
    };
  }

  it("accepts the heads of node:http, fetch, ws and Python's urllib as llhttp reads them", async () => {
    const rec = await headRecorder();
    try {
      const nodeRequest = (method: string, path: string, body?: string[], length = false) =>
        new Promise<void>((resolve) => {
          const req = request(`${rec.url}${path}`, {
            method,
            headers: {
              "X-Session-ID": "sess-1",
              ...(length && body ? { "Content-Length": body.join("").length } : {}),
            },
          });
          req.on("response", (res) => res.resume().on("end", resolve));
          req.on("error", () => resolve());
          for (const part of body ?? []) req.write(part);
          req.end();
        });
      await nodeRequest("GET", "/s/abc/x?y=1");
      await nodeRequest("POST", "/upload", ["part one, ", "part two"]);
      await nodeRequest("PUT", "/put", ["exactly"], true);
      await fetch(`${rec.url}/fetched`, { headers: { "X-Session-ID": "s" } }).then((r) => r.text());
      await fetch(`${rec.url}/api`, { method: "POST", body: JSON.stringify({ a: 1 }) }).then((r) =>
        r.text(),
      );
      await new Promise<void>((resolve) => {
        const ws = new WebSocket(`${rec.url.replace("http", "ws")}/s/abc/ws`);
        ws.on("error", () => resolve());
        ws.on("close", () => resolve());
      });
      const py = await runCaptured(join(REPO_ROOT, ".venv/bin/python"), [
        "-c",
        `import urllib.request; urllib.request.urlopen(urllib.request.Request("${rec.url}/py", headers={"X-Session-ID": "p"})).read()`,
      ]);
      expect(py.code, py.stderr).toBe(0);
    } finally {
      await rec.close();
    }
    expect(rec.heads.length).toBe(7);
    for (const text of rec.heads) {
      const ours = parseRequestHead(bytes(text), 0, MAX);
      expect(typeof ours, JSON.stringify(text)).toBe("object");
      expectLlhttpAgrees(text, ours as RequestHead);
    }
    const [get, chunked, put, , post, ws] = rec.heads.map(
      (t) => parseRequestHead(bytes(t), 0, MAX) as RequestHead,
    );
    expect(get!.keepAlive).toBe(true);
    expect(chunked!.body).toEqual({ kind: "chunked" });
    expect(put!.body).toEqual({ kind: "length", length: 7 });
    expect(post!.body).toEqual({ kind: "length", length: 7 });
    expect(ws!.upgrade).toBe(true);
  });
});
