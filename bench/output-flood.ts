// Output flood (issue 21): what a worker writing to stdout as fast as it can costs the daemon.
// One pool, one session whose worker runs a node one-liner writing 64 KiB lines to stdout as
// fast as the pipe takes them beside the test worker, and the daemon's own
// CPU seconds (process.cpuUsage: this process is the daemon) over a fixed window, plus the growth of its
// heap and buffers. The daemon reads a worker's output into a bounded ring (output-ring.ts) and
// paces the reading (worker-output.ts), so both stay bounded whatever the worker prints.
//
// Standalone: `node --expose-gc --import tsx bench/output-flood.ts [--seconds N]`

import { loadavg } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { Herd, resolvePoolOptions } from "../src/pool/index.ts";
import { WORKER_FIXTURE as WORKER } from "../test/helpers/worker.ts";
import { type BenchRow, round } from "./report.ts";

/** Writes 64 KiB lines to stdout as fast as the pipe takes them (node waits out EAGAIN). */
const FLOOD = `const b = Buffer.alloc(65536, 97); b[65535] = 10;
(function w() { while (process.stdout.write(b)); process.stdout.once("drain", w); })();`;

/** Live JS heap plus buffers outside it: what a ring or a backlog would grow. */
function usedMemory(): number {
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}

export async function benchOutputFlood(opts: { seconds: number }): Promise<BenchRow[]> {
  const herd = await Herd.start([
    resolvePoolOptions({
      name: "flood",
      command: [
        "sh",
        "-c",
        `${process.execPath} ${WORKER} & exec ${process.execPath} -e '${process.env.FLOOD_QUIET ? "setInterval(()=>{},1e6)" : FLOOD}'`,
      ],
      min: 0,
      max: 1,
      reuse: false,
      healthIntervalMs: 60_000,
    }),
  ]);
  try {
    await herd.acquire("flood", "flood-1");
    // Node's stream machinery settles at a fixed ~12 MiB of buffers in the first seconds of a
    // flood; growth after that would be a leak.
    await sleep(3_000);
    globalThis.gc?.();
    const heap = usedMemory();
    const before = process.cpuUsage();
    await sleep(opts.seconds * 1_000);
    const used = process.cpuUsage(before);
    const cpuSeconds = (used.user + used.system) / 1e6;
    globalThis.gc?.();
    const heapGrowthMiB = (usedMemory() - heap) / 2 ** 20;
    return [
      {
        name: `daemon CPU seconds over ${opts.seconds} s, one worker flooding stdout (load ${round(loadavg()[0]!, 1)})`,
        value: round(cpuSeconds, 2),
        unit: "s",
      },
      {
        name: "daemon heap and buffers growth meanwhile (after a full GC)",
        value: round(heapGrowthMiB, 1),
        unit: "MiB",
      },
    ];
  } finally {
    await herd.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const i = process.argv.indexOf("--seconds");
  const seconds = i >= 0 ? Number(process.argv[i + 1]) : 10;
  for (const row of await benchOutputFlood({ seconds })) console.log(row);
}
