// What this host lets the daemon guarantee, probed once per process.
//
// Tree-kill and die-with-the-daemon guarantees come from three independent mechanisms; each is
// used when available and the daemon says once which guarantees are off:
//   - pdeathsig (util-linux setpriv): the worker's root dies when the daemon dies, even by SIGKILL
//     (a reaper sidecar extends this to whole cgroup v2 trees: reaper.ts);
//   - a PID namespace (util-linux unshare --pid --fork --kill-child): when its init dies, the
//     kernel kills every member, including setsid'd double-forked grandchildren;
//   - cgroups: v2 `cgroup.kill` ends a whole tree at once and `populated` tells when it is gone;
//     memory / cpu / pids controllers (v2, or v1 where the host has them) enforce limits.

import { execFileSync } from "node:child_process";
import { accessSync, constants, existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

export interface CgroupMounts {
  /** Root of the v2 hierarchy (pure v2 or the hybrid "unified" mount), with our own path. */
  v2?: string;
  /** Controllers delegated to us in v2 (subset of memory, cpu, pids). */
  v2Controllers: Set<string>;
  /** v1 controller name → our directory in that hierarchy. */
  v1: Map<string, string>;
}

export interface HostCapabilities {
  setpriv?: string;
  unshare?: string;
  pidNamespace: boolean;
  cgroups: CgroupMounts;
  /** Human-readable list of guarantees that are off on this host (empty: all on). */
  missing: string[];
}

let probed: HostCapabilities | undefined;

export function hostCapabilities(): HostCapabilities {
  probed ??= probe();
  return probed;
}

/** The program's path on the daemon's PATH, like the shell's `command -v`. */
export function which(program: string): string | undefined {
  for (const dir of (process.env.PATH ?? "/usr/bin:/bin").split(":")) {
    const candidate = join(dir, program);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {}
  }
  return undefined;
}

function probe(): HostCapabilities {
  const setpriv = which("setpriv");
  const unshare = which("unshare");
  let pidNamespace = false;
  if (unshare) {
    try {
      execFileSync(unshare, ["--pid", "--fork", "--kill-child", "true"], {
        stdio: "ignore",
        timeout: 5_000,
      });
      pidNamespace = true;
    } catch {}
  }
  const cgroups = probeCgroups();
  const missing: string[] = [];
  const wholeTree = cgroups.v2 !== undefined || pidNamespace;
  if (!wholeTree) {
    missing.push(
      "whole-tree kill (no writable cgroup v2, no PID namespaces): grandchildren that call setsid may outlive their session",
    );
  }
  // A SIGKILLed daemon: the reaper ends cgroup v2 trees; else pdeathsig ends roots (and, with a
  // PID namespace, the whole namespace).
  if (!cgroups.v2 && !(setpriv && pidNamespace)) {
    missing.push(
      setpriv
        ? "die-with-daemon for whole trees: only worker roots die with a killed daemon"
        : "die-with-daemon (no cgroup v2 and no util-linux setpriv): workers may outlive a killed daemon",
    );
  }
  for (const controller of ["memory", "cpu", "pids"]) {
    if (!cgroups.v2Controllers.has(controller) && !cgroups.v1.has(controller)) {
      missing.push(`${controller} limits (no writable ${controller} cgroup controller)`);
    }
  }
  return { setpriv, unshare, pidNamespace, cgroups, missing };
}

function writable(dir: string): boolean {
  try {
    accessSync(dir, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** Our own cgroup path per hierarchy, from /proc/self/cgroup ("0::/x" for v2, "4:memory:/y"). */
function ownPaths(): Map<string, string> {
  const paths = new Map<string, string>();
  for (const line of readFileSync("/proc/self/cgroup", "utf8").split("\n")) {
    const first = line.indexOf(":");
    const second = line.indexOf(":", first + 1);
    if (first < 0 || second < 0) continue;
    const controllers = line.slice(first + 1, second);
    const path = line.slice(second + 1);
    if (controllers === "") paths.set("", path);
    for (const c of controllers.split(",")) if (c) paths.set(c.replace(/^name=/, "name:"), path);
  }
  return paths;
}

function probeCgroups(): CgroupMounts {
  const result: CgroupMounts = { v2Controllers: new Set(), v1: new Map() };
  if (process.platform !== "linux" || !existsSync("/proc/self/cgroup")) return result;
  const own = ownPaths();
  const base = "/sys/fs/cgroup";
  const v2Root = existsSync(join(base, "cgroup.controllers"))
    ? base
    : existsSync(join(base, "unified", "cgroup.controllers"))
      ? join(base, "unified")
      : undefined;
  if (v2Root) {
    // Inside a container our recorded path may not exist in this mount; fall back to its root.
    const mine = join(v2Root, own.get("") ?? "/");
    const dir = existsSync(mine) ? mine : v2Root;
    if (writable(dir) && existsSync(join(dir, "cgroup.procs"))) {
      result.v2 = dir;
      try {
        for (const c of readFileSync(join(dir, "cgroup.controllers"), "utf8").trim().split(/\s+/)) {
          if (c === "memory" || c === "cpu" || c === "pids") result.v2Controllers.add(c);
        }
      } catch {}
    }
  }
  for (const controller of ["memory", "cpu", "pids"]) {
    if (result.v2Controllers.has(controller)) continue;
    const mount = join(base, controller);
    if (!existsSync(join(mount, "cgroup.procs")) || existsSync(join(mount, "cgroup.controllers"))) {
      continue;
    }
    const mine = join(mount, own.get(controller) ?? "/");
    const dir = existsSync(mine) && writable(mine) ? mine : mount;
    if (writable(dir)) result.v1.set(controller, dir);
  }
  return result;
}
