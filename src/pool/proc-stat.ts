// Reads /proc/<pid>/stat, the one place herd parses it. The command name (field 2) may hold
// spaces and parentheses, so fields are counted from the last ")".

import { readFileSync } from "node:fs";

export interface ProcStat {
  /** R, S, D, Z (zombie: exited, waiting for its parent to reap it), X (dead), ... */
  state: string;
  ppid: number;
}

/** The process's state and parent, or undefined when it no longer exists. */
export function procStat(pid: number): ProcStat | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  const [state = "", ppid] = stat.slice(stat.lastIndexOf(")") + 2).split(" ", 2);
  return { state, ppid: Number(ppid) };
}

/**
 * Whether the process still runs. A zombie has already released its memory, files and
 * sockets; only its parent's wait() remains, which for reparented setsid grandchildren is the
 * host's init and not in herd's control.
 */
export function processRuns(pid: number): boolean {
  const stat = procStat(pid);
  return stat !== undefined && stat.state !== "Z" && stat.state !== "X";
}
