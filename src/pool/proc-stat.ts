// Reads /proc/<pid>/stat, the one place herd (and its tests' leak checks) parse it. The command
// name (field 2) is parenthesised and may itself hold spaces or ")", so the fields after it are
// counted from the last ")".

import { readFileSync } from "node:fs";

export interface ProcStat {
  pid: number;
  comm: string;
  /** R, S, D, Z (zombie: exited, waiting for its parent to reap it), X (dead), ... */
  state: string;
  ppid: number;
  pgid: number;
  sid: number;
  /** Clock ticks after boot when the process started: with the pid, it names one process. */
  startTime: number;
}

/** The process's stat line, parsed; undefined when it no longer exists or is unreadable. */
export function procStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  const open = text.indexOf("(");
  const close = text.lastIndexOf(")");
  if (open < 0 || close < open) return undefined;
  // After the command: state ppid pgrp session ... (fields 3-6), starttime is field 22.
  const fields = text.slice(close + 2).split(" ");
  const [state = "?", ppid, pgid, sid] = fields;
  return {
    pid,
    comm: text.slice(open + 1, close),
    state,
    ppid: Number(ppid),
    pgid: Number(pgid),
    sid: Number(sid),
    startTime: Number(fields[19]),
  };
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
