#!/usr/bin/env node
// A worker that answers with exactly the bytes a spec asks for — what a hostile or broken
// worker sends, without an HTTP library smoothing anything over. Listens on $PORT (TCP).
//
//   GET /raw?r=BASE64[&close=1]  writes the decoded bytes (then closes the connection with 1)
//   GET /count                   200 {connection, request}: this TCP connection's number and
//                                how many requests it carried
//   POST /early?r=BASE64         writes the bytes as soon as the head arrived, body unread
//   GET /silent                  never answers
// Request bodies are read by Content-Length (others are not sent to this worker).
import { createServer } from "node:net";

let connections = 0;
const server = createServer((socket) => {
  const id = ++connections;
  let requests = 0;
  let buffered = Buffer.alloc(0);
  let skip = 0;
  socket.on("error", () => {});
  socket.on("data", (chunk) => {
    buffered = Buffer.concat([buffered, chunk]);
    for (;;) {
      if (skip > 0) {
        const n = Math.min(skip, buffered.length);
        skip -= n;
        buffered = buffered.subarray(n);
        if (skip > 0) return;
      }
      const end = buffered.indexOf("\r\n\r\n");
      if (end < 0) return;
      const head = buffered.subarray(0, end).toString("latin1");
      buffered = buffered.subarray(end + 4);
      requests++;
      const [method, target] = head.split(" ");
      const url = new URL(target, "http://worker");
      skip = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
      const raw = Buffer.from(url.searchParams.get("r") ?? "", "base64");
      if (url.pathname === "/count") {
        const body = JSON.stringify({ connection: id, request: requests });
        socket.write(
          `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
        );
      } else if (url.pathname === "/raw" || (url.pathname === "/early" && method === "POST")) {
        socket.write(raw);
        if (url.searchParams.get("close") === "1") socket.end();
      }
      // /silent and anything else: no answer.
    }
  });
});
server.listen(Number(process.env.PORT ?? 0), "127.0.0.1");
process.on("SIGTERM", () => process.exit(0));
