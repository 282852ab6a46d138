// Differential tests of the strict response-head parser against llhttp (see
// request-head.spec.ts for how): whatever parseResponseHead accepts, llhttp reads alike, with
// the body framed where ours frames it; a hostile worker's malformed heads are invalid; and
// node:http's real responses, read from a loopback server that is closed and awaited, are
// accepted and framed by their real bodies.
import { once } from "node:events";
import { createServer } from "node:http";
import { type AddressInfo, connect } from "node:net";
import { describe, expect, it } from "vitest";
import {
  bodyFor,
  bytes,
  fieldLines,
  MAX,
  mutate,
  prng,
  type Rng,
} from "../../../test/helpers/http1-cases.ts";
import { llhttp } from "../../../test/helpers/llhttp.ts";
import { ChunkedFraming } from "./chunked-framing.ts";
import { parseResponseHead, type ResponseHead } from "./response-head.ts";

const NEXT_RESPONSE = "HTTP/1.1 204 No Content\r\n\r\n";

function expectLlhttpAgreesResponse(text: string, ours: ResponseHead, method: string): void {
  const head = text.slice(0, ours.headBytes);
  const context = `${method} ${JSON.stringify(text)}`;
  const interim = ours.status < 200 && ours.status !== 101;
  let stream = head;
  const { body, whole } =
    ours.body.kind === "close" ? { body: "until close", whole: true } : bodyFor(ours.body);
  stream += body;
  const next =
    whole && ours.status !== 101 && (interim || (ours.keepAlive && ours.body.kind !== "close"));
  if (next) stream += NEXT_RESPONSE;
  const ll = llhttp("response", bytes(stream), {
    requestMethod: method,
    finish: ours.body.kind === "close",
  });
  expect(ll.error, context).toBeUndefined();
  const m = ll.messages[0];
  expect(m, context).toBeDefined();
  expect(
    {
      status: m!.status,
      reason: m!.reason,
      minor: m!.minor,
      rawHeaders: m!.rawHeaders,
      keepAlive: m!.keepAlive,
      body: m!.body.toString("latin1"),
      complete: m!.complete,
    },
    context,
  ).toEqual({
    status: ours.status,
    reason: ours.reason,
    minor: ours.minor,
    rawHeaders: ours.rawHeaders,
    keepAlive: ours.keepAlive,
    body: ours.body.kind === "chunked" ? "abc" : body,
    complete: whole,
  });
  if (ours.status === 101) expect(ll.consumed, context).toBe(ours.headBytes);
  expect(ll.messages.length, context).toBe(next ? 2 : 1);
  if (next) expect(ll.messages[1]!.status, context).toBe(204);
}

/** Heads real servers send (Node, Go, Python, nginx-style): each must be accepted. */
const COMMON_RESPONSES: [string, string][] = [
  [
    "GET",
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nDate: Wed, 25 Nov 2026 16:00:00 GMT\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nContent-Length: 5\r\n\r\n",
  ],
  [
    "GET",
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nDate: Wed, 25 Nov 2026 16:00:00 GMT\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nTransfer-Encoding: chunked\r\n\r\n",
  ],
  [
    "GET",
    "HTTP/1.1 200 OK\r\nDate: Wed, 25 Nov 2026 16:00:00 GMT\r\nContent-Length: 12\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n",
  ],
  [
    "GET",
    "HTTP/1.0 200 OK\r\nServer: SimpleHTTP/0.6 Python/3.12.3\r\nDate: Wed, 25 Nov 2026 16:00:00 GMT\r\nContent-type: text/html\r\n\r\n",
  ],
  ["GET", "HTTP/1.0 200 OK\r\nServer: SimpleHTTP/0.6 Python/3.12.3\r\nContent-Length: 3\r\n\r\n"],
  ["GET", 'HTTP/1.1 304 Not Modified\r\nETag: "abc"\r\nContent-Length: 512\r\n\r\n'],
  ["DELETE", "HTTP/1.1 204 No Content\r\nDate: Wed, 25 Nov 2026 16:00:00 GMT\r\n\r\n"],
  ["HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nContent-Type: text/html\r\n\r\n"],
  ["HEAD", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"],
  [
    "GET",
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
  ],
  ["POST", "HTTP/1.1 100 Continue\r\n\r\n"],
  ["GET", "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\n\r\n"],
  [
    "GET",
    "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n",
  ],
  [
    "GET",
    "HTTP/1.1 500 Internal Server Error\r\nServer: nginx/1.26.2\r\nContent-Type: text/html\r\nContent-Length: 5\r\nSet-Cookie: a=b; Path=/; HttpOnly\r\nSet-Cookie: c=d\r\n\r\n",
  ],
  ["GET", "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n"],
  ["GET", "HTTP/1.1 302 Found\r\nLocation: /login?next=%2F\r\nContent-Length: 0\r\n\r\n"],
];

const STATUS_LINES = [
  "HTTP/1.1 200 OK",
  "HTTP/1.1 200 OK",
  "HTTP/1.1 200 OK",
  "HTTP/1.1 204 No Content",
  "HTTP/1.1 304 Not Modified",
  "HTTP/1.1 101 Switching Protocols",
  "HTTP/1.1 100 Continue",
  "HTTP/1.1 102 Processing",
  "HTTP/1.1 103 Early Hints",
  "HTTP/1.0 200 OK",
  "HTTP/1.1 404 Not Found",
  "HTTP/1.1 500 Internal Server Error",
  "HTTP/1.1 200",
  "HTTP/1.1 200 ",
  "HTTP/1.1 200 \xe4",
  "HTTP/1.1 200 O\x01K",
  "HTTP/1.2 200 OK",
  "HTTP/2 200",
  "HTTP/1.1 20 OK",
  "HTTP/1.1 2000 OK",
  "HTTP/1.1 099 X",
  "HTTP/1.1 150 X",
  "HTTP/1.1 600 X",
  "HTTP/1.1 999 X",
  "HTTP/1.1  200 OK",
  "http/1.1 200 OK",
  "HTTP/1.1 +20 OK",
];
const RESPONSE_HEADERS: [string, string[]][] = [
  ["Content-Type", ["text/plain", "application/json; charset=utf-8"]],
  ["Date", ["Wed, 25 Nov 2026 16:00:00 GMT"]],
  ["Server", ["nginx", "herd-worker \xe4"]],
  ["Set-Cookie", ["a=b; Path=/", "herd_session=evil"]],
  ["Keep-Alive", ["timeout=5"]],
  ["X-Empty", [""]],
  ["ETag", ['"x"']],
  ["Upgrade", ["websocket", ""]],
  ["Proxy-Connection", ["close"]],
  ["Trailer", ["X-Checksum"]],
];

function responseText(r: Rng): string {
  const lines = fieldLines(r, RESPONSE_HEADERS);
  for (let k = lines.length - 1; k > 0; k--) {
    const j = r.int(k + 1);
    [lines[k], lines[j]] = [lines[j]!, lines[k]!];
  }
  const status = r.next() < 0.5 ? "HTTP/1.1 200 OK" : r.pick(STATUS_LINES);
  return `${status}\r\n${lines.map((l) => `${l}\r\n`).join("")}\r\n`;
}

describe("parseResponseHead", () => {
  it("accepts the common heads of real servers exactly as llhttp reads them", () => {
    for (const [method, text] of COMMON_RESPONSES) {
      const ours = parseResponseHead(bytes(text), 0, MAX, method);
      expect(typeof ours, JSON.stringify(text)).toBe("object");
      expectLlhttpAgreesResponse(text, ours as ResponseHead, method);
    }
  });

  it("frames bodies per RFC 9112 §6.3", () => {
    const framing = (text: string, method = "GET") =>
      (parseResponseHead(bytes(text), 0, MAX, method) as ResponseHead).body;
    expect(framing(COMMON_RESPONSES[0]![1])).toEqual({ kind: "length", length: 5 });
    expect(framing(COMMON_RESPONSES[1]![1])).toEqual({ kind: "chunked" });
    expect(framing(COMMON_RESPONSES[3]![1])).toEqual({ kind: "close" });
    expect(framing(COMMON_RESPONSES[5]![1])).toEqual({ kind: "none" });
    expect(framing(COMMON_RESPONSES[7]![1], "HEAD")).toEqual({ kind: "none" });
    expect(framing(COMMON_RESPONSES[9]![1])).toEqual({ kind: "none" });
    expect(framing(COMMON_RESPONSES[14]![1])).toEqual({ kind: "none" });
    const python = parseResponseHead(bytes(COMMON_RESPONSES[3]![1]), 0, MAX, "GET");
    expect(python).toMatchObject({ keepAlive: false, minor: 0 });
  });

  it("says incomplete for every prefix, and too-large past the limit", () => {
    for (const [method, text] of COMMON_RESPONSES) {
      const whole = bytes(text);
      for (let k = 0; k < whole.length; k++) {
        expect(parseResponseHead(whole.subarray(0, k), 0, MAX, method), `${k} of ${text}`).toBe(
          "incomplete",
        );
      }
      expect(parseResponseHead(whole, 0, whole.length - 1, method)).toBe("too-large");
    }
  });

  it("finds a hostile worker's malformed heads invalid", () => {
    const invalid = [
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
      "HTTP/1.1 200 OK\nContent-Length: 5\r\n\r\n",
      "HTTP/1.1 200 OK\r\nX: a\0b\r\n\r\n",
      "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n",
      "HTTP/1.1 200 O\x01K\r\n\r\n",
      "HTTP/1.2 200 OK\r\n\r\n",
      "HTTP/1.1 099 X\r\n\r\n",
      "HTTP/1.1 150 X\r\nContent-Length: 1\r\n\r\n",
      "HTTP/1.1 600 X\r\n\r\n",
      "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
      "HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n",
      "GET / HTTP/1.1\r\n\r\n",
      "\r\nHTTP/1.1 200 OK\r\n\r\n",
    ];
    for (const text of invalid) {
      expect(parseResponseHead(bytes(text), 0, MAX, "GET"), JSON.stringify(text)).toBe("invalid");
    }
  });

  it("differential fuzz: every head we accept, llhttp accepts identically", () => {
    const r = prng(0x5e5);
    const cases = 3000;
    let accepted = 0;
    let invalidButLl = 0;
    for (let n = 0; n < cases; n++) {
      const text = mutate(responseText(r), r);
      const method = r.pick(["GET", "GET", "POST", "HEAD"]);
      const buf = bytes(text);
      const ours = parseResponseHead(buf, 0, MAX, method);
      if (typeof ours === "object") {
        accepted++;
        expectLlhttpAgreesResponse(text, ours, method);
      } else if (ours === "incomplete") {
        expect(llhttp("response", buf, { requestMethod: method }).messages.length).toBe(0);
      } else if (ours === "invalid") {
        const ll = llhttp("response", buf, { requestMethod: method });
        if (ll.error === undefined && ll.messages.length > 0) invalidButLl++;
      }
    }
    expect(accepted).toBeGreaterThan(cases / 10);
    console.log(
      `responses: ${cases} cases, we accepted ${accepted}, invalid ${invalidButLl} llhttp took`,
    );
  });
});

describe("heads real clients and servers send", () => {
  it("accepts node:http's responses and frames their real bodies", async () => {
    const server = createServer((req, res) => {
      if (req.url === "/stream") {
        res.write("first ");
        res.end("second");
      } else if (req.url === "/204") res.writeHead(204).end();
      else if (req.url === "/304") res.writeHead(304, { ETag: '"x"' }).end();
      else res.end("hello");
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const port = (server.address() as AddressInfo).port;
    const exchange = async (method: string, path: string) => {
      const socket = connect(port, "127.0.0.1");
      socket.end(`${method} ${path} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n`);
      const chunks: Buffer[] = [];
      for await (const c of socket) chunks.push(c as Buffer);
      return Buffer.concat(chunks);
    };
    try {
      for (const [method, path, kind] of [
        ["GET", "/len", "length"],
        ["GET", "/stream", "chunked"],
        ["GET", "/204", "none"],
        ["GET", "/304", "none"],
        ["HEAD", "/len", "none"],
      ] as const) {
        const all = await exchange(method, path);
        const ours = parseResponseHead(all, 0, MAX, method);
        expect(typeof ours, `${method} ${path}`).toBe("object");
        const head = ours as ResponseHead;
        expect(head.body.kind, `${method} ${path}`).toBe(kind);
        expectLlhttpAgreesResponse(all.toString("latin1"), head, method);
        const rest = all.length - head.headBytes;
        if (head.body.kind === "length") expect(rest).toBe(head.body.length);
        if (head.body.kind === "chunked") {
          expect(new ChunkedFraming().feed(all, head.headBytes)).toEqual({
            used: rest,
            done: true,
          });
        }
        if (head.body.kind === "none") expect(rest).toBe(0);
      }
    } finally {
      server.close();
      server.closeAllConnections();
      await once(server, "close");
    }
  });
});
