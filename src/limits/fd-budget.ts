// How many file descriptors the daemon may spend on client connections, derived from its soft
// RLIMIT_NOFILE (read from /proc/self/limits). Stateless.
//
// Why a budget: every proxied data-plane request holds two descriptors (client socket and
// worker socket), and a daemon out of descriptors fails in the worst places (new workers die
// with `listen EMFILE`, established sessions get 502). So a quarter of the limit (at least 128)
// is kept back for workers (pipes, pidfds, cgroup files, readiness probes) and the daemon's own
// files; data-plane clients get 80 % of the rest at two descriptors each, the control plane
// (one descriptor per connection) the remaining 20 %. (A full connection gate may admit a
// tenth more for clients holding none, see connection-gate.ts: the reserve covers that.)

import { readFileSync } from "node:fs";

/** What a system without /proc (or with `unlimited`) is assumed to allow. */
const FALLBACK_NOFILE = 1024;
const MAX_COUNTED_NOFILE = 1 << 20;

/** The soft "Max open files" of this process, or `fallback` when it cannot be read. */
export function softNofile(limitsText?: string, fallback = FALLBACK_NOFILE): number {
  let text = limitsText;
  if (text === undefined) {
    try {
      text = readFileSync("/proc/self/limits", "utf8");
    } catch {
      return fallback;
    }
  }
  const m = /^Max open files\s+(\S+)/m.exec(text);
  if (!m) return fallback;
  if (m[1] === "unlimited") return MAX_COUNTED_NOFILE;
  const n = Number(m[1]);
  return Number.isInteger(n) && n > 0 ? Math.min(n, MAX_COUNTED_NOFILE) : fallback;
}

export interface FdBudget {
  /** The soft RLIMIT_NOFILE the budget was derived from. */
  nofile: number;
  /** Descriptors never handed to client connections (workers, files, the daemon itself). */
  reserved: number;
  /** Default cap on open data-plane client connections (each costs two descriptors). */
  dataConnections: number;
  /** Default cap on open control-plane connections. */
  controlConnections: number;
}

export function fdBudget(nofile = softNofile()): FdBudget {
  const reserved = Math.max(128, Math.floor(nofile / 4));
  const spare = Math.max(0, nofile - reserved);
  const dataConnections = Math.max(1, Math.floor((spare * 0.8) / 2));
  return {
    nofile,
    reserved,
    dataConnections,
    controlConnections: Math.max(1, Math.floor(spare * 0.2)),
  };
}
