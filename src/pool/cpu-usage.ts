// How much CPU a worker's tree has used (µs): the cgroup's cpu.stat where the worker has a v2
// cgroup (every process it ever ran, exited ones included), else the sum of utime + stime of
// its live processes from /proc (what exited children used is lost). One small file read per
// worker, or one per process without a cgroup: see docs/configuration.md (idle_cpu) for the
// measured cost.

import { readFileSync } from "node:fs";
import { join } from "node:path";

/** USER_HZ: Linux reports /proc times in 1/100 s on every architecture it runs on. */
const TICK_US = 10_000;

/** `usage_usec` of a v2 cgroup's cpu.stat; undefined when unreadable. */
export function cgroupCpuUs(dir: string): number | undefined {
  try {
    const match = /^usage_usec (\d+)$/m.exec(readFileSync(join(dir, "cpu.stat"), "utf8"));
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** utime + stime of the processes still alive (fields 14 and 15 of /proc/<pid>/stat). */
export function processesCpuUs(pids: readonly number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/stat`, "utf8");
    } catch {
      continue; // gone since it was listed
    }
    // Fields after the parenthesised command: state is field 3, utime 14, stime 15.
    const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
    ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks * TICK_US;
}
