// Whose listener answered? A readiness probe only proves that *something* listens on the port.
// Between the daemon choosing a free port and the worker binding it, another program (another
// herd, a test, anything) can take that port; the worker then fails to bind while the probe
// reaches the other program — and a session would be routed to a stranger. So once a probe
// succeeds, the daemon checks that the listening socket is held by a process of the worker's
// own tree, via /proc/net/tcp{,6} (socket inode) and /proc/PID/fd (who holds it).

import { existsSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { open } from "node:fs/promises";
import { procStat } from "./proc-stat.ts";

/** The /proc tables of TCP sockets in the network namespace of `netOf`, IPv4 and IPv6. */
const tcpTables = (netOf: string) => [`/proc/${netOf}/net/tcp`, `/proc/${netOf}/net/tcp6`];

/** Socket states as /proc/net/tcp shows them: LISTEN, and SYN_RECV (see listenersIn). */
const LISTEN = "0A";
const SYN_RECV = "03";
/** Bytes per read of a table: the kernel fills each read only as far as it asks. */
const TABLE_CHUNK = 4_096;

/**
 * Inodes of sockets in LISTEN state on `port` (any local address) in one /proc table;
 * undefined when the table cannot be read. The kernel lists the listening hash first, then the
 * established one, and producing the whole table costs ~2 ms whatever it holds (it walks every
 * bucket): so the table is read in small chunks, off the event loop, and only up to the end of
 * the listeners — about 0.1 ms. (Kernels before 4.4 listed a listener's pending SYN_RECV
 * requests right after it, so those do not end the listeners.)
 */
async function listenersIn(table: string, port: number): Promise<Set<string> | undefined> {
  const file = await open(table, "r").catch(() => undefined);
  if (file === undefined) return undefined;
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  const inodes = new Set<string>();
  const buffer = Buffer.allocUnsafe(TABLE_CHUNK);
  try {
    let rest = "";
    let header = true;
    for (;;) {
      const { bytesRead } = await file.read(buffer, 0, TABLE_CHUNK, null);
      if (bytesRead === 0) return inodes;
      const lines = (rest + buffer.toString("latin1", 0, bytesRead)).split("\n");
      rest = lines.pop()!;
      for (const line of lines) {
        if (header) {
          header = false;
          continue;
        }
        // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
        const fields = line.trim().split(/\s+/);
        if (fields[3] !== LISTEN && fields[3] !== SYN_RECV) return inodes;
        if (fields[3] === LISTEN && fields[1]?.endsWith(`:${hexPort}`) && fields[9]) {
          inodes.add(fields[9]);
        }
      }
    }
  } catch {
    return undefined;
  } finally {
    // Nothing waits for the close: the answer is known.
    file.close().catch(() => {});
  }
}

/** Listener inodes on `port`, IPv4 and IPv6 together; undefined when neither table reads. */
async function listeningInodes(port: number, netOf = "self"): Promise<Set<string> | undefined> {
  const tables = await Promise.all(tcpTables(netOf).map((t) => listenersIn(t, port)));
  if (tables.every((t) => t === undefined)) return undefined;
  return new Set(tables.flatMap((t) => [...(t ?? [])]));
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
  // One table after the other, IPv4 first: a listener of the tree in either makes it "mine"
  // whatever the other holds, and a worker is usually on one family only. Read at once, the
  // two slowed each other down (0.23 ms for IPv4 alone, ~1 ms beside IPv6).
  let readable = false;
  let listened = false;
  for (const table of tcpTables("self")) {
    const inodes = await listenersIn(table, port);
    if (inodes === undefined) continue;
    readable = true;
    if (inodes.size === 0) continue;
    listened = true;
    if (pids().some((pid) => holdsSocket(pid, inodes))) return "mine";
  }
  if (!readable) return undefined;
  return listened ? "stranger" : "none";
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

/**
 * Every TCP address a process of `pids` listens on ("127.0.0.1:3000", "[::]:8080"), each
 * member's sockets looked up in its own network namespace's tables. For telling a worker that
 * listens on the wrong port from one that is slow: read on failure only, so whole tables, in
 * one go. undefined where /proc does not tell.
 */
export function treeListeners(pids: readonly number[]): string[] | undefined {
  const byNamespace = new Map<string, { pid: number; inodes: Set<string> }>();
  for (const pid of pids) {
    let ns: string;
    let fds: string[];
    try {
      ns = readlinkSync(`/proc/${pid}/ns/net`);
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue; // gone meanwhile, or not ours to read
    }
    const entry = byNamespace.get(ns) ?? { pid, inodes: new Set<string>() };
    byNamespace.set(ns, entry);
    for (const fd of fds) {
      try {
        const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
        if (target.startsWith("socket:[")) entry.inodes.add(target.slice(8, -1));
      } catch {}
    }
  }
  if (byNamespace.size === 0) return undefined;
  const out = new Set<string>();
  for (const { pid, inodes } of byNamespace.values()) {
    for (const table of tcpTables(String(pid))) {
      let text: string;
      try {
        text = readFileSync(table, "latin1");
      } catch {
        continue;
      }
      for (const line of text.split("\n").slice(1)) {
        const fields = line.trim().split(/\s+/);
        if (fields[3] === LISTEN && fields[9] && inodes.has(fields[9])) {
          out.add(formatProcAddress(fields[1]!));
        }
      }
    }
  }
  return [...out];
}

/** /proc/net/tcp's `0100007F:0BB8` (each 32-bit word in host order, little-endian here). */
function formatProcAddress(hex: string): string {
  const [addr, port] = hex.split(":") as [string, string];
  const words = (addr.match(/.{8}/g) ?? []).map((w) => Buffer.from(w, "hex").reverse());
  const bytes = Buffer.concat(words);
  const v4 = bytes.length === 4 ? bytes : ipv4Mapped(bytes);
  // A URL writes an IPv6 address the short way ("[::1]").
  const host = v4
    ? [...v4].join(".")
    : new URL(`http://[${(bytes.toString("hex").match(/.{4}/g) ?? []).join(":")}]/`).hostname;
  return `${host}:${Number.parseInt(port, 16)}`;
}

function ipv4Mapped(bytes: Buffer): Buffer | undefined {
  const prefix = Buffer.from("00000000000000000000ffff", "hex");
  return bytes.subarray(0, 12).equals(prefix) ? bytes.subarray(12) : undefined;
}
