// What a running daemon costs, read from outside it: its resident memory and CPU time from
// /proc, and its open control-plane streams from /metrics. For the abuse specs that prove an
// attack's cost is bounded.

import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

export function rssMiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) / 1024;
}

const TICKS_PER_SECOND = 100; // USER_HZ: what /proc/<pid>/stat counts in, on every Linux

/** User + system CPU seconds the process has used so far (/proc/<pid>/stat utime + stime). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name (which may hold spaces), from field 3 (state) on.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

/** herd_control_streams{kind} from the daemon's /metrics. */
export async function openStreams(controlUrl: string, kind: "watchers" | "holds"): Promise<number> {
  const text = await (await fetch(`${controlUrl}/metrics`)).text();
  const m = new RegExp(`^herd_control_streams\\{kind="${kind}"\\} (\\d+)$`, "m").exec(text);
  if (!m) throw new Error(`no herd_control_streams{kind="${kind}"} in /metrics`);
  return Number(m[1]);
}

/** Polls `check` every 100 ms until it holds or `withinMs` passes; returns whether it held. */
export async function eventuallyAsync(
  check: () => Promise<boolean>,
  withinMs: number,
): Promise<boolean> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await sleep(100);
  }
}
