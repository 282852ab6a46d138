#!/usr/bin/env node
// A worker whose tunnels echo raw bytes with backpressure: any Upgrade is answered 101, then
// the socket is piped into itself, so when its writes back up it stops reading (as a worker
// in C or Go would; the ws library instead buffers without bound). Plain requests get 200.
// Listens on $PORT.
import { createServer } from "node:http";

const server = createServer((_req, res) => res.end("ok"));
server.on("upgrade", (_req, socket, head) => {
  socket.on("error", () => {});
  socket.write("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n");
  if (head.length > 0) socket.write(head);
  socket.pipe(socket);
});
server.listen(Number(process.env.PORT), "127.0.0.1");
