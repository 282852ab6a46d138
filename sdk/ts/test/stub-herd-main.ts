// Runs the stub control plane as a process for the Python and Go SDK checks:
//   tsx sdk/ts/test/stub-herd-main.ts [--token T] [--grace-ms N] [--disconnect-grace-ms N]
// Prints "LISTENING <url>" once it accepts calls; exits when stdin closes (so it never
// outlives the test that spawned it) or on SIGTERM/SIGINT.
import { parseArgs } from "node:util";
import { startStubHerd } from "./stub-herd.ts";

const { values } = parseArgs({
  options: {
    token: { type: "string" },
    "grace-ms": { type: "string" },
    "disconnect-grace-ms": { type: "string" },
  },
});
const grace = values["grace-ms"] === undefined ? undefined : Number(values["grace-ms"]);
if (grace !== undefined && !(grace > 0)) {
  console.error(`stub-herd: --grace-ms must be a positive number, got "${values["grace-ms"]}"`);
  process.exit(2);
}
const window = Number(values["disconnect-grace-ms"] ?? 0);
if (!(window >= 0)) {
  console.error(
    `stub-herd: --disconnect-grace-ms must be >= 0, got "${values["disconnect-grace-ms"]}"`,
  );
  process.exit(2);
}
const stub = await startStubHerd({
  disconnectGraceMs: window,
  ...(values.token === undefined ? {} : { token: values.token }),
  ...(grace === undefined ? {} : { heartbeatGraceMs: grace, heartbeatIntervalMs: grace / 5 }),
});
process.stdout.write(`LISTENING ${stub.url}\n`);

const stop = () => {
  void stub.close().then(() => process.exit(0));
};
process.stdin.on("end", stop);
process.stdin.on("close", stop);
process.stdin.resume();
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
