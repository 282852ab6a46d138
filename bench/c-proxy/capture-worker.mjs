#!/usr/bin/env node
// The worker of proxy.spec.ts: records the exact bytes of each request it receives (head and
// body, framed by Content-Length or chunked) as one JSON line {request: base64} appended to
// $CAPTURE_FILE, then answers with the response its path names (RESPONSES below: each with
// fields a proxy must drop or keep; /big?n=N: N bytes of a pattern). Listens on $PORT (TCP,
// loopback).
import { appendFileSync } from "node:fs";
import { createServer } from "node:net";

const FILE = process.env.CAPTURE_FILE;
if (!FILE) throw new Error("capture-worker: CAPTURE_FILE is not set");

const RESPONSES = {
  // Hop-by-hop fields, a field Connection lists, herd's cookie, an unpadded and a padded field.
  "/cl":
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nKeep-Alive: timeout=99\r\nConnection: x-drop\r\n" +
    "X-Drop: gone\r\nX-Keep:kept  \r\nProxy-Thing: p\r\nSet-Cookie: herd_token=evil; Path=/\r\n" +
    "Set-Cookie: a=1\r\nContent-Length: 5\r\n\r\nhello",
  "/chunked":
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: x-t\r\nX-A: a\r\n\r\n" +
    "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n",
  "/204": "HTTP/1.1 204 No Content\r\nX-B: b\r\nContent-Type: text/plain\r\n\r\n",
  // No reason phrase: herd writes the status line again.
  "/bare": "HTTP/1.1 201\r\nContent-Length: 2\r\n\r\nok",
  "/hints":
    "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
  "/old": "HTTP/1.0 200 Fine\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\nold",
};

/** The request's length in buf (head and body), or -1: not all of it yet. */
function requestLength(buf) {
  const end = buf.indexOf("\r\n\r\n");
  if (end < 0) return -1;
  const head = buf.subarray(0, end).toString("latin1");
  let at = end + 4;
  if (/\r\ntransfer-encoding: *chunked/i.test(head)) {
    for (;;) {
      const line = buf.indexOf("\r\n", at);
      if (line < 0) return -1;
      const size = Number.parseInt(buf.subarray(at, line).toString("latin1").split(";")[0], 16);
      at = line + 2 + size + 2;
      if (at > buf.length) return -1;
      if (size === 0) return at; // no trailer fields in these requests
    }
  }
  at += Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
  return at <= buf.length ? at : -1;
}

const server = createServer((socket) => {
  let buffered = Buffer.alloc(0);
  socket.on("error", () => {});
  socket.on("data", (chunk) => {
    buffered = Buffer.concat([buffered, chunk]);
    for (;;) {
      const n = requestLength(buffered);
      if (n < 0) return;
      const request = buffered.subarray(0, n);
      buffered = buffered.subarray(n);
      appendFileSync(FILE, `${JSON.stringify({ request: request.toString("base64") })}\n`);
      const [, target] = request.toString("latin1").split(" ");
      const path = target.split("?")[0];
      const head = request.toString("latin1").startsWith("HEAD ");
      if (path === "/big") {
        // n bytes of a known pattern (byte i is i % 251): a download to back up.
        const n = Number(new URL(target, "http://w").searchParams.get("n"));
        const data = Buffer.alloc(n);
        for (let i = 0; i < n; i++) data[i] = i % 251;
        socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${n}\r\n\r\n`);
        socket.write(data);
        continue;
      }
      const body = `{"path":${JSON.stringify(path)},"bytes":${request.length}}`;
      const answer =
        RESPONSES[path] ??
        `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
      // A HEAD's answer is the head alone (the proxies frame it as bodiless).
      socket.write(head ? answer.slice(0, answer.indexOf("\r\n\r\n") + 4) : answer);
    }
  });
});
server.listen(Number(process.env.PORT ?? 0), "127.0.0.1");
process.on("SIGTERM", () => process.exit(0));
