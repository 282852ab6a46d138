#!/usr/bin/env node
// The fake outside world's servers, run inside the test's own network namespace: HTTP on port 80
// of every address there, and a DNS server on UDP port 53 of each that answers A queries for NAME
// with ADDR.
//   GET /hello        "outside <local address>"
//   GET /bytes?n=N    N bytes (bench/egress.ts's download)
// Usage: outside-server.mjs NAME ADDR   (prints "ready" once both listen)
import { createSocket } from "node:dgram";
import { createServer } from "node:http";
import { networkInterfaces } from "node:os";

const [name, addr] = process.argv.slice(2);
const chunk = Buffer.alloc(1 << 20, 120);

const http = createServer((req, res) => {
  const url = new URL(req.url ?? "/", "http://outside");
  if (url.pathname === "/bytes") {
    let left = Number(url.searchParams.get("n") ?? 0);
    res.writeHead(200, {
      "content-length": String(left),
      "content-type": "application/octet-stream",
    });
    const pump = () => {
      while (left > 0) {
        const n = Math.min(left, chunk.length);
        left -= n;
        if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n)))
          return void res.once("drain", pump);
      }
      res.end();
    };
    return pump();
  }
  res
    .writeHead(200, { "content-type": "text/html" })
    .end(
      `<!doctype html><title>outside</title><h1 id="where">outside ${req.socket.localAddress}</h1>`,
    );
});

// One question in, one A record out (NXDOMAIN for any other name). One socket per address, so
// an answer leaves from the address the question went to (a resolver must answer that way).
function answer(dns, msg, from) {
  let at = 12;
  const labels = [];
  while (msg[at] !== 0 && at < msg.length) {
    labels.push(msg.subarray(at + 1, at + 1 + msg[at]).toString());
    at += msg[at] + 1;
  }
  const question = msg.subarray(12, at + 5);
  const qtype = msg.readUInt16BE(at + 1);
  const hit = labels.join(".").toLowerCase() === name && qtype === 1;
  const head = Buffer.alloc(12);
  msg.copy(head, 0, 0, 2);
  head.writeUInt16BE(hit ? 0x8180 : 0x8183, 2);
  head.writeUInt16BE(1, 4);
  head.writeUInt16BE(hit ? 1 : 0, 6);
  const record = hit
    ? Buffer.concat([
        Buffer.from([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4]),
        Buffer.from(addr.split(".").map(Number)),
      ])
    : Buffer.alloc(0);
  dns.send(Buffer.concat([head, question, record]), from.port, from.address);
}

const local = Object.values(networkInterfaces())
  .flat()
  .filter((a) => a.family === "IPv4" && !a.internal)
  .map((a) => a.address);
let up = 0;
const ready = () => {
  if (++up === local.length + 1) console.log("ready");
};
http.listen(80, "0.0.0.0", ready);
for (const address of local) {
  const dns = createSocket("udp4");
  dns.on("message", (msg, from) => answer(dns, msg, from));
  dns.bind(53, address, ready);
}
