// The floor for a proxy written on Node's sockets: a raw TCP relay (no HTTP at all, a
// connection to the target per client connection) in a process of its own, so its CPU is
// measured alone. Usage: node bench/tcp-relay.mjs [onread] <target port>; prints `ready <port>`.
//
// Default: `pipe` both ways. `onread`: the socket layer as herd's hot path uses it, which is
// the floor herd's HTTP work sits on: the upstream connection reads into a buffer of its own
// (net.connect's `onread`, no stream machinery, no Buffer per read), the client socket through
// its 'data' events (Node 20's net.Server has no `onread`), and each side writes what the
// other read with one write(), its backpressure by pause/resume on 'drain'.
import { connect, createServer } from "node:net";

const args = process.argv.slice(2);
const onread = args.includes("onread");
const target = Number(args.find((a) => /^\d+$/.test(a)));
const READ_BUFFER_BYTES = 16 * 1024; // as src/dataplane/fast/pinned-upstream.ts

function piped(client) {
  const upstream = connect(target, "127.0.0.1");
  upstream.setNoDelay(true);
  client.pipe(upstream).pipe(client);
  return upstream;
}

function onreadRelay(client) {
  let buffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
  const upstream = connect({
    port: target,
    host: "127.0.0.1",
    noDelay: true,
    onread: {
      // Bytes the client socket still queues point into the last buffer: read into a new one.
      buffer: () => {
        if (client.writableLength > 0) buffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
        return buffer;
      },
      callback: (n, buf) => {
        if (client.write(buf.subarray(0, n))) return true;
        client.once("drain", () => upstream.resume());
        return false;
      },
    },
  });
  client.on("data", (chunk) => {
    if (upstream.write(chunk)) return;
    client.pause();
    upstream.once("drain", () => client.resume());
  });
  client.on("end", () => upstream.end());
  upstream.on("end", () => client.end());
  return upstream;
}

const relay = createServer((client) => {
  client.setNoDelay(true);
  const upstream = onread ? onreadRelay(client) : piped(client);
  client.on("error", () => upstream.destroy());
  upstream.on("error", () => client.destroy());
});
relay.listen(0, "127.0.0.1", () => process.stdout.write(`ready ${relay.address().port}\n`));
process.stdin.on("end", () => process.exit(0)).resume();
