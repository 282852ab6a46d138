// What a WebSocket tunnel to a contained worker costs per message, with and without the dial
// that lets it skip the relay in the worker's network namespace (native/tunnel-relay's dial
// socket, NativeRelay.dial): the same Go echo worker (bench/go-worker's /ws), contained, behind
// a data plane whose tunnels run on herd's native relay. "dialed": the upstream connection is
// made inside the namespace and passed out, so a message passes one relay (herd's); "relayed":
// the sandbox's relay has no dial socket (LauncherOptions.relay "native without dial"), as
// before dials, so each message passes herd's relay and the one in the namespace. 10 sockets,
// each echoing one 64-byte message at a time (data-plane.ts's wsEcho). Per side: messages per
// second, and CPU per message of herd's relay plus the worker's whole tree (its relay
// included), from /proc. Rounds interleave the sides (rotating); medians; load beside.
//
// Standalone (root, bubblewrap, cc, Go): `node --import tsx bench/contained-tunnel.ts
// [--seconds N] [--rounds N]`.

import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { startDataPlane } from "../src/dataplane/index.ts";
import { Herd, resolvePoolOptions } from "../src/pool/index.ts";
import { sandboxLauncher } from "../src/sandbox/index.ts";
import { goWorker, tunnelRelay } from "./bench-tools.ts";
import { wsEcho } from "./data-plane.ts";
import { type BenchRow, compared, formatTable, load1, median, round } from "./report.ts";
import { treeCpu } from "./sandbox-relay.ts";

const SIDES = ["dialed", "relayed"] as const;
type Side = (typeof SIDES)[number];
const CONTAINED = { user: "auto", network: "private", filesystem: "private" } as const;
const TICKS_PER_SECOND = 100;
const quiet = { debug() {}, info() {}, warn() {}, error() {} };

/** CPU seconds of one process (herd's relay: a child of this one, no children of its own). */
function cpu(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / TICKS_PER_SECOND;
}

export async function benchContainedTunnel({ seconds = 3, rounds = 5 } = {}): Promise<BenchRow[]> {
  const relay = tunnelRelay();
  const stacks = [] as {
    side: Side;
    herd: Herd;
    dp: Awaited<ReturnType<typeof startDataPlane>>;
  }[];
  const loads: number[] = [];
  const samples: Record<Side, { msgs: number; cpuUs: number }[]> = { dialed: [], relayed: [] };
  try {
    for (const side of SIDES) {
      const herd = await Herd.start(
        [
          resolvePoolOptions({
            name: side,
            command: [goWorker()],
            min: 0,
            max: 1,
            isolation: CONTAINED,
          }),
        ],
        {
          sandbox: sandboxLauncher(side === "relayed" ? { relay: "native without dial" } : {}),
        },
      );
      const dp = await startDataPlane(herd, {
        listen: "127.0.0.1:0",
        logger: quiet as never,
        nativeRelay: relay,
      });
      stacks.push({ side, herd, dp });
    }
    const ends = await Promise.all(
      stacks.map(async ({ side, herd, dp }) => {
        const s = await herd.acquire(side, `tunnel-${side}`);
        return { side, dp, headers: { "X-Session-ID": s.id }, tree: s.workerPid };
      }),
    );
    for (let r = 0; r < rounds; r++) {
      loads.push(load1());
      for (let k = 0; k < ends.length; k++) {
        const { side, dp, headers, tree } = ends[(k + r) % ends.length]!;
        await wsEcho(dp.url, 0.3, headers); // warm-up
        const herdRelay = dp.nativeRelayPid!;
        const before = cpu(herdRelay) + treeCpu(tree);
        const rate = await wsEcho(dp.url, seconds, headers);
        const used = cpu(herdRelay) + treeCpu(tree) - before;
        samples[side].push({ msgs: rate, cpuUs: (used / (rate * seconds)) * 1e6 });
      }
    }
    if (ends.some(({ dp }) => dp.counters.nativeTunnels === 0)) {
      throw new Error("a side's tunnels did not run on herd's native relay");
    }
    const dialed = stacks.find((s) => s.side === "dialed")!.dp.counters;
    const relayed = stacks.find((s) => s.side === "relayed")!.dp.counters;
    if (dialed.dialed === 0 || relayed.dialed !== 0) {
      throw new Error(`dials: ${dialed.dialed} dialed, ${relayed.dialed} relayed (want > 0, 0)`);
    }
  } finally {
    for (const { dp, herd } of stacks) {
      await dp.close();
      await herd.close();
    }
  }
  const msgs = (side: Side) => median(samples[side].map((s) => s.msgs));
  const us = (side: Side) => median(samples[side].map((s) => s.cpuUs));
  return [
    ...SIDES.flatMap((side): BenchRow[] => [
      {
        name: `contained WebSocket echo, ${side}: msg/s`,
        value: round(msgs(side), 0),
        unit: "msg/s",
      },
      {
        name: `contained WebSocket echo, ${side}: relays' and worker's CPU per message`,
        value: round(us(side), 1),
        unit: "µs/msg",
      },
    ]),
    compared(
      "contained WebSocket echo: msg/s dialed vs relayed",
      msgs("dialed"),
      "msg/s",
      msgs("relayed"),
    ),
    compared(
      "contained WebSocket echo: CPU/msg dialed vs relayed",
      us("dialed"),
      "µs/msg",
      us("relayed"),
    ),
    {
      name: `load average beside them (median of ${rounds} rounds)`,
      value: median(loads),
      unit: "load1",
    },
  ];
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const arg = (name: string, fallback: number) => {
    const i = process.argv.indexOf(name);
    return i >= 0 ? Number(process.argv[i + 1]) : fallback;
  };
  benchContainedTunnel({ seconds: arg("--seconds", 3), rounds: arg("--rounds", 5) }).then(
    (rows) => {
      console.log(formatTable(rows));
      process.exit(0);
    },
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
