// `network: egress` against the host's own network, in one run, rounds interleaved: a 100 MB
// download from the fake outside world (test/egress/outside-world.ts) and the cost of a fresh
// connection (connect + GET + close, sequential). Candidates measured beside herd's own
// (a veth pair filtered by nftables, src/sandbox/egress): pasta (passt) and slirp4netns, each
// giving an empty namespace of this bench's own its route out. Printed as ratios to the host.
// Also what one egress worker's network costs to make and remove (prepare time, absorbed by
// the spare: namespace, veth pair, addresses, nftables elements).
//
// Standalone (root; iproute2, nftables, passt, slirp4netns: scripts/setup-sandbox.sh):
//   node --import tsx bench/egress.ts [--runs N] [--mb M] [--conns C]

import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { loadavg, tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { PoolEgress } from "../src/sandbox/index.ts";
import { startOutsideWorld } from "../test/egress/outside-world.ts";
import { median, round } from "./report.ts";

const CLIENT = fileURLToPath(new URL("./egress-client.mjs", import.meta.url));
const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "3" },
    mb: { type: "string", default: "100" },
    conns: { type: "string", default: "200" },
  },
});
const runs = Number(values.runs);
const bytes = Number(values.mb) * 1_000_000;
const conns = Number(values.conns);

interface Sample {
  mbps: number;
  perConnMs: number;
}

function client(prefix: readonly string[], host: string): Sample {
  const argv = [...prefix, process.execPath, CLIENT, host, String(bytes), String(conns)];
  const out = execFileSync(argv[0]!, argv.slice(1), {
    stdio: ["ignore", "pipe", "inherit"],
    timeout: 300_000,
  });
  return JSON.parse(out.toString()) as Sample;
}

/** A namespace of the bench's own, given its route out by `attach` (a process it starts). */
async function userModeNet(attach: (netns: string, holderPid: number) => string[]) {
  const netns = `herdbe-${randomBytes(3).toString("hex")}`;
  execFileSync("ip", ["netns", "add", netns]);
  const holder = spawn("ip", ["netns", "exec", netns, "sleep", "infinity"], { stdio: "ignore" });
  await new Promise((r) => setTimeout(r, 200));
  const [tool, ...args] = attach(netns, holder.pid!);
  const helper = spawn(tool!, args, { stdio: "ignore" });
  for (let i = 0; i < 100; i++) {
    const routes = execFileSync("ip", ["-n", netns, "route"]).toString();
    if (routes.includes("default")) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    prefix: ["nsenter", `--net=/run/netns/${netns}`, "--"],
    close() {
      helper.kill("SIGKILL");
      holder.kill("SIGKILL");
      execFileSync("ip", ["netns", "delete", netns]);
    },
  };
}

const world = await startOutsideWorld();
const pool = new PoolEgress("bench", { allow: [], deny: [] });
const setupMs: number[] = [];
for (let i = 0; i < 10; i++) {
  const t = performance.now();
  pool.launch(tmpdir(), process.pid).release();
  setupMs.push(performance.now() - t);
}
const net = pool.launch(tmpdir(), process.pid);
const pasta = await userModeNet((netns) => [
  "pasta",
  "--config-net",
  "-f",
  "--quiet",
  "--netns-only",
  "--runas",
  "0",
  "--netns",
  `/run/netns/${netns}`,
]);
const slirp = await userModeNet((_netns, pid) => [
  "slirp4netns",
  "--configure",
  "--mtu=65520",
  "--disable-host-loopback",
  String(pid),
  "tap0",
]);
const candidates: Record<string, readonly string[]> = {
  host: [],
  "egress (veth + nftables)": ["nsenter", `--net=${net.netnsPath}`, "--"],
  pasta: pasta.prefix,
  slirp4netns: slirp.prefix,
};
const samples: Record<string, Sample[]> = Object.fromEntries(
  Object.keys(candidates).map((k) => [k, []]),
);
const load = [loadavg()[0]!];
try {
  for (let run = 0; run < runs; run++) {
    for (const [name, prefix] of Object.entries(candidates))
      samples[name]!.push(client(prefix, world.internet));
    load.push(loadavg()[0]!);
  }
} finally {
  pasta.close();
  slirp.close();
  net.release();
  pool.close();
  world.close();
}
const host = samples.host!;
const hostMbps = median(host.map((s) => s.mbps));
const hostConn = median(host.map((s) => s.perConnMs));
console.log(
  `egress bench: ${values.mb} MB download, ${conns} sequential connections, ${runs} interleaved runs (medians)`,
);
for (const [name, list] of Object.entries(samples)) {
  const mbps = median(list.map((s) => s.mbps));
  const conn = median(list.map((s) => s.perConnMs));
  console.log(
    `${name.padEnd(26)} ${String(round(mbps)).padStart(8)} Mbit/s  ×${round(mbps / hostMbps, 2)} of host   ${String(round(conn, 3)).padStart(7)} ms/conn  ×${round(conn / hostConn, 2)} of host`,
  );
}
console.log(`egress worker network, make + remove: ${round(median(setupMs))} ms (median of 10)`);
console.log(`load average (1 min) during the run: ${load.map((l) => l.toFixed(2)).join(" → ")}`);
