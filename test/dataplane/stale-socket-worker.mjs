#!/usr/bin/env node
// A worker whose keep-alive connections go stale: on every TCP connection it answers the
// first request and resets the connection (RST, no response byte) on the second — what a
// proxy sees when a worker closes an idle keep-alive socket just as it is reused.
// Listens on $PORT. Responses carry the connection's sequence number.
import { createServer } from "node:net";

let connections = 0;
const server = createServer((socket) => {
  const id = ++connections;
  let requests = 0;
  let buffered = "";
  socket.on("error", () => {});
  socket.on("data", (chunk) => {
    buffered += chunk.toString("latin1");
    while (buffered.includes("\r\n\r\n")) {
      const end = buffered.indexOf("\r\n\r\n") + 4;
      const head = buffered.slice(0, end);
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
      if (buffered.length < end + length) return;
      buffered = buffered.slice(end + length);
      requests++;
      if (requests >= 2) {
        socket.resetAndDestroy();
        return;
      }
      const body = JSON.stringify({ connection: id, pid: process.pid });
      socket.write(
        `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: keep-alive\r\n\r\n${body}`,
      );
    }
  });
});
server.listen(Number(process.env.PORT ?? 0), "127.0.0.1");
process.on("SIGTERM", () => process.exit(0));
