// Whose listener answered? A readiness probe only proves that *something* listens on the port.
// Between the daemon choosing a free port and the worker binding it, another program (another
// herd, a test, anything) can take that port; the worker then fails to bind while the probe
// reaches the other program — and a session would be routed to a stranger. So once a probe
// succeeds, the daemon checks that the listening socket is held by a process of the worker's
// own tree, via /proc/net/tcp{,6} (socket inode) and /proc/PID/fd (who holds it).

import { existsSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { procStat } from "./proc-stat.ts";

/**
 * Inodes of sockets in LISTEN state on `port`, any local address, IPv4 and IPv6. Reading a
 * /proc/net/tcp table costs ~2 ms whatever it holds (the kernel walks every hash bucket), so
 * both are read at once, off the event loop.
 */
async function listeningInodes(port: number, netOf = "self"): Promise<Set<string> | undefined> {
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  const tables = await Promise.all(
    [`/proc/${netOf}/net/tcp`, `/proc/${netOf}/net/tcp6`].map((t) =>
      readFile(t, "utf8").catch(() => undefined),
    ),
  );
  if (tables.every((t) => t === undefined)) return undefined;
  const inodes = new Set<string>();
  for (const text of tables) {
    for (const line of text?.split("\n").slice(1) ?? []) {
      const fields = line.trim().split(/\s+/);
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
      if (fields[3] === "0A" && fields[1]?.endsWith(`:${hexPort}`) && fields[9]) {
        inodes.add(fields[9]);
      }
    }
  }
  return inodes;
}

function holdsSocket(pid: number, inodes: Set<string>): boolean {
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return false;
  }
  for (const fd of fds) {
    try {
      const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      if (target.startsWith("socket:[") && inodes.has(target.slice(8, -1))) return true;
    } catch {}
  }
  return false;
}

/**
 * Who holds the listener on `port`: "mine" (a process of `pids`), "stranger" (someone else),
 * "none" (nobody listens any more: the worker stopped listening or is exiting, which must not
 * be blamed on another program), or undefined when this host does not let us tell (no /proc),
 * so the caller trusts the probe.
 */
export type ListenerOwner = "mine" | "stranger" | "none";

export async function ownsListener(
  pids: () => readonly number[],
  port: number,
): Promise<ListenerOwner | undefined> {
  const inodes = await listeningInodes(port);
  if (inodes === undefined) return undefined;
  if (inodes.size === 0) return "none";
  return pids().some((pid) => holdsSocket(pid, inodes)) ? "mine" : "stranger";
}

/**
 * For a tree in a network namespace of its own, where a connect through the sandbox's relay
 * succeeds before the worker listens: does any listener on `port` exist in the namespace of
 * `pids` (the first member outside the daemon's own namespace)? The namespace holds nothing
 * but the worker's tree, so existing is enough.
 */
export async function listensInOwnNetwork(pids: readonly number[], port: number): Promise<boolean> {
  let own: string;
  try {
    own = readlinkSync("/proc/self/ns/net");
  } catch {
    return false;
  }
  for (const pid of pids) {
    try {
      if (readlinkSync(`/proc/${pid}/ns/net`) === own) continue;
    } catch {
      continue;
    }
    return ((await listeningInodes(port, String(pid)))?.size ?? 0) > 0;
  }
  return false;
}

/** The pid and every descendant still linked to it by parent pids (for hosts without cgroups). */
export function treePids(root: number): number[] {
  return childrenWalk(root) ?? scanAll(root);
}

/**
 * Follows /proc/PID/task/TID/children (every thread's, since any thread may fork): it reads
 * only the tree, where scanAll reads every process of the host (tens of ms on a busy one).
 * undefined where the kernel lacks the files (CONFIG_PROC_CHILDREN).
 */
let childrenFiles: boolean | undefined;

function childrenWalk(root: number): number[] | undefined {
  childrenFiles ??= existsSync(`/proc/self/task/${process.pid}/children`);
  if (!childrenFiles) return undefined;
  const out: number[] = [];
  const queue = [root];
  const seen = new Set<number>();
  while (queue.length > 0) {
    const pid = queue.shift()!;
    if (seen.has(pid)) continue;
    seen.add(pid);
    out.push(pid);
    let tasks: string[];
    try {
      tasks = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue; // gone meanwhile
    }
    for (const tid of tasks) {
      let text = "";
      try {
        text = readFileSync(`/proc/${pid}/task/${tid}/children`, "utf8");
      } catch {}
      for (const child of text.split(" ")) if (child.trim()) queue.push(Number(child));
    }
  }
  return out;
}

function scanAll(root: number): number[] {
  const children = new Map<number, number[]>();
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return [root];
  }
  for (const name of entries) {
    const pid = Number(name);
    if (!Number.isInteger(pid)) continue;
    const ppid = procStat(pid)?.ppid;
    if (ppid === undefined) continue;
    const siblings = children.get(ppid) ?? [];
    siblings.push(pid);
    children.set(ppid, siblings);
  }
  const out: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.shift()!;
    out.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return out;
}
