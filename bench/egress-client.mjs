#!/usr/bin/env node
// Runs in the network namespace under test (bench/egress.ts): a BYTES download from the
// outside server, then CONNS sequential fresh connections (connect, GET /hello, close).
// Prints {mbps, perConnMs} as JSON.
import { get } from "node:http";

const [host, bytes, conns] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])];

function fetch(path) {
  return new Promise((resolve, reject) => {
    get({ host, port: 80, path, agent: false }, (res) => {
      let n = 0;
      res.on("data", (d) => {
        n += d.length;
      });
      res.on("end", () => resolve(n));
    }).on("error", reject);
  });
}

await fetch("/hello"); // ARP, conntrack, route caches warm
let t = performance.now();
const got = await fetch(`/bytes?n=${bytes}`);
if (got !== bytes) throw new Error(`got ${got} of ${bytes} bytes`);
const mbps = (bytes * 8) / 1e6 / ((performance.now() - t) / 1000);
t = performance.now();
for (let i = 0; i < conns; i++) await fetch("/hello");
const perConnMs = (performance.now() - t) / conns;
console.log(JSON.stringify({ mbps, perConnMs }));
