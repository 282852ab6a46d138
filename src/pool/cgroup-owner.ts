// Who owns a daemon generation's top-level cgroup, written into its name so that ownership
// exists from the mkdir on (no window without a mark): `herd-<pid namespace inode>-<pid>-<start
// time>` of its reaper (reaper.ts), which lives as long as some daemon owns the generation's
// workers, across restarts (older herds named it after the daemon itself: read the same way).
//
// Invariant: the stale-cgroup sweep removes a directory only when its daemon is provably dead.
// That needs the pid to be read in the daemon's own PID namespace: same namespace, and either
// no such pid or one that started at another time (the pid was reused). A daemon in another
// PID namespace (another container sharing the cgroup filesystem) can never be proven dead
// from here, so its cgroups are left alone, however its pid looks from this side. Stateless.

import { readlinkSync } from "node:fs";
import { procStat } from "./proc-stat.ts";

export interface DaemonIdentity {
  /** Inode of the PID namespace the pid is valid in. */
  pidns: string;
  pid: number;
  /** The process's start time (clock ticks after boot), to tell a reused pid. */
  start: number;
}

const OWNED = /^herd-(\d+)-(\d+)-(\d+)$/;
/** The name older herd versions used: the pid alone, with no way to tell whose. */
const LEGACY = /^herd-(\d+)$/;

function pidNamespace(): string {
  try {
    return /\[(\d+)\]/.exec(readlinkSync("/proc/self/ns/pid"))?.[1] ?? "0";
  } catch {
    return "0";
  }
}

export function ownIdentity(): DaemonIdentity {
  return {
    pidns: pidNamespace(),
    pid: process.pid,
    start: procStat(process.pid)?.startTime ?? 0,
  };
}

export function cgroupName(id: DaemonIdentity): string {
  return `herd-${id.pidns}-${id.pid}-${id.start}`;
}

export type CgroupOwner =
  | { kind: "owned"; id: DaemonIdentity }
  | { kind: "legacy"; pid: number }
  | { kind: "other" };

export function ownerOf(name: string): CgroupOwner {
  const owned = OWNED.exec(name);
  if (owned) {
    return {
      kind: "owned",
      id: { pidns: owned[1]!, pid: Number(owned[2]), start: Number(owned[3]) },
    };
  }
  const legacy = LEGACY.exec(name);
  return legacy ? { kind: "legacy", pid: Number(legacy[1]) } : { kind: "other" };
}

/** True only when the owner is certainly gone: same PID namespace, pid absent or reused. */
export function provablyDead(owner: DaemonIdentity, self: DaemonIdentity): boolean {
  if (owner.pidns !== self.pidns) return false;
  if (owner.pid === self.pid && owner.start === self.start) return false;
  const stat = procStat(owner.pid);
  return stat === undefined || stat.startTime !== owner.start || stat.state === "Z";
}
