// The floor for a proxy written on Node's sockets: a raw TCP relay (`pipe` both ways, no HTTP
// at all, a connection to the target per client connection) in a process of its own, so its
// CPU is measured alone. Usage: node bench/tcp-relay.mjs <target port>; prints `ready <port>`.
import { connect, createServer } from "node:net";

const target = Number(process.argv[2]);
const relay = createServer((client) => {
  const upstream = connect(target, "127.0.0.1");
  client.setNoDelay(true);
  upstream.setNoDelay(true);
  client.pipe(upstream).pipe(client);
  client.on("error", () => upstream.destroy());
  upstream.on("error", () => client.destroy());
});
relay.listen(0, "127.0.0.1", () => process.stdout.write(`ready ${relay.address().port}\n`));
process.stdin.on("end", () => process.exit(0)).resume();
