// The argv that contains one worker: bubblewrap makes the namespaces and mounts, then a tiny
// shell inside starts the relay (network: private), waits on the gate, and exec's the command
// under the worker's own uid with no capabilities. The relay is herd's native relay in its
// listen mode (one process, no fork per connection); socat where it was not built.
//
//   [nsenter --net=<netns> --]                              network: egress (egress/worker-net.ts)
//   [sh -c 'exec "$@" 9<filter' <filter>]                   the seccomp filter on fd 9
//   bwrap [--die-with-parent] --unshare-pid,ipc,uts[,net]   lo comes up in a new netns; no
//                                                            --die-with-parent for a restartable
//                                                            tree (its generation's lifeline)
//         --seccomp 9                                        seccomp.ts; bwrap sets no_new_privs
//         --bind / / --dev /dev --proc /proc                 host files; private /dev, /proc
//         --size N --tmpfs /dev/shm [--tmpfs /tmp,/var/tmp   (1777, bounded) shared memory, temp
//           --tmpfs /run/lock --ro-bind <code> <code>]       files; the worker's code, if in /tmp
//         --tmpfs <runtime parent> --bind <own dir> <own dir>  every generation's relays/homes
//                                                            and control socket hidden (runtime-dir.ts)
//         [--ro-bind <herd's relay> <own dir>/relay/tunnel-relay]  the native relay, seen there only
//         --ro-bind /dev/null <file>                         the daemon's config unreadable
//         [--ro-bind <own dir>/resolv.conf /etc/resolv.conf] egress: resolvers it may reach
//   sh -c '<own dir>/relay/tunnel-relay --listen <own dir>/relay/http.sock $PORT
//          <own dir>/relay/dial.sock &
//          read -r _; exec setpriv --reuid U --regid G --clear-groups --no-new-privs
//          --bounding-set -all --inh-caps -all -- "$@"'
//   (socat's form of the relay: socat UNIX-LISTEN:<own dir>/relay/http.sock,fork,backlog=511
//   TCP:127.0.0.1:$PORT)
//
// Everything up to `read` runs at prepare time, so a prepared spare has paid for it. The relay
// runs as root in the worker's network namespace and listens in a root-only directory: the
// worker (never root, see host-support.ts) cannot reach its own relay's socket, nor any other.

import { dirname } from "node:path";
import { RELAY_DIAL_SOCKET, RELAY_SOCKET } from "../core/index.ts";

export interface WorkerBox {
  /** The worker's own directory: relay/ (root, 0700) and home/ (the worker's uid, 0700). */
  dir: string;
  /**
   * Die with the daemon (bwrap --die-with-parent); false for a tree that must outlive it for a
   * restart, which its generation's cgroup.kill ends instead (src/pool/reaper.ts).
   */
  dieWithParent: boolean;
  /** Where every daemon generation's runtime directory lives (every pool's workers, the control
   * socket, a restart's successor's too): hidden inside. */
  root: string;
  port: number;
  /** Switch to this uid/gid before exec (absent: keep the daemon's). */
  uid?: number;
  gid?: number;
  /** A network namespace of its own, reached through the relay. */
  network: boolean;
  /** That namespace already exists (network: egress): enter it instead of making one. */
  netns?: string;
  /** Shown as the worker's /etc/resolv.conf. */
  resolvConf?: string;
  filesystem: boolean;
  /** Files hidden behind /dev/null (the daemon's config). */
  hide: readonly string[];
  /** Directories under /tmp that hold the worker's code: seen read-only over the private /tmp. */
  keep: readonly string[];
  /** Size bound of each private tmpfs (/tmp, /var/tmp, /dev/shm), in bytes. */
  tmpfsBytes: number;
  /** The compiled seccomp filter's file (absent: none, where herd has no table for the CPU). */
  seccomp?: string;
  /** /run/lock exists on this host (it gets a private one). */
  runLock: boolean;
}

/**
 * The top-level /tmp directories a private /tmp would hide the worker's own code in: its cwd's
 * and those of its command's absolute paths (a checkout under /tmp runs its workers from there). Whole top-level
 * directories, since a program finds its modules in the directories above its own.
 */
export function codeUnderTmp(paths: readonly string[]): string[] {
  const tops = new Set<string>();
  for (const path of paths) {
    const m = /^\/tmp\/([^/]+)/.exec(path);
    if (m) tops.add(`/tmp/${m[1]}`);
  }
  return [...tops];
}

/**
 * The relay into a worker's network namespace: herd's native relay (native/tunnel-relay, its
 * listen mode) or, where that was not built, socat (which forks per connection).
 */
export type RelayTool =
  | {
      kind: "native";
      path: string;
      /** false: no dial socket (benches measure tunnels through the relay too) */
      dial?: false;
    }
  | { kind: "socat"; path: string };

export interface BwrapTools {
  bwrap: string;
  relay: RelayTool;
  setpriv: string;
  nsenter: string;
}

export function relaySocket(dir: string): string {
  return `${dir}/relay/${RELAY_SOCKET}`;
}

export function bwrapArgv(box: WorkerBox, tools: BwrapTools): string[] {
  // nsenter first: the filter's fd 9 passes through it to bwrap, which loads the filter.
  const argv = box.netns ? [tools.nsenter, `--net=${box.netns}`, "--"] : [];
  if (box.seccomp) argv.push("/bin/sh", "-c", 'exec "$@" 9<"$0"', box.seccomp);
  argv.push(tools.bwrap);
  if (box.dieWithParent) argv.push("--die-with-parent");
  argv.push("--unshare-pid", "--unshare-ipc", "--unshare-uts");
  if (box.network && !box.netns) argv.push("--unshare-net");
  if (box.seccomp) argv.push("--seccomp", "9");
  argv.push("--bind", "/", "/", "--dev", "/dev", "--proc", "/proc");
  const tmpfs = (path: string, bytes = box.tmpfsBytes) =>
    argv.push("--perms", "1777", "--size", String(bytes), "--tmpfs", path);
  tmpfs("/dev/shm");
  if (box.filesystem) {
    tmpfs("/tmp");
    tmpfs("/var/tmp");
    if (box.runLock) tmpfs("/run/lock", 1 << 20);
    for (const dir of box.keep) argv.push("--ro-bind", dir, dir);
  }
  // bwrap would make the pool's directory 0700 (root): the worker must pass through it.
  argv.push("--tmpfs", box.root, "--perms", "0711", "--dir", dirname(box.dir));
  argv.push("--bind", box.dir, box.dir);
  // herd's own relay is seen inside under the worker's root-only relay directory, wherever herd
  // lives (a checkout under the private /tmp included), without showing the worker herd's tree.
  const relay = box.network ? insideRelay(tools.relay, box.dir) : undefined;
  if (relay && relay.path !== tools.relay.path)
    argv.push("--ro-bind", tools.relay.path, relay.path);
  for (const file of box.hide) argv.push("--ro-bind", "/dev/null", file);
  if (box.resolvConf) argv.push("--ro-bind", box.resolvConf, "/etc/resolv.conf");
  let script = "";
  if (relay) script += `${relayCommand(relay, box.dir, box.port)} </dev/null & `;
  script += "read -r _ || :; exec ";
  if (box.uid !== undefined) {
    script += `${quote(tools.setpriv)} --reuid ${box.uid} --regid ${box.gid ?? box.uid} --clear-groups --no-new-privs --bounding-set -all --inh-caps -all -- `;
  }
  script += '"$@" </dev/null';
  argv.push("--", "/bin/sh", "-c", script, "herd-sandbox");
  return argv;
}

/** The relay as the sandbox runs it: the native relay bound into the worker's relay directory. */
function insideRelay(relay: RelayTool, dir: string): RelayTool {
  return relay.kind === "native" ? { ...relay, path: `${dir}/relay/tunnel-relay` } : relay;
}

/**
 * The relay socket's listen backlog: the data plane opens upstream connections in bursts (a
 * burst of new client connections), and a full backlog refuses a Unix socket's connect at once
 * (EAGAIN: a 502). socat's default is 5; the native relay listens with the same 511.
 */
const BACKLOG = 511;

/** The native relay also listens for dials (worker-endpoint.ts); socat cannot pass sockets. */
function relayCommand(relay: RelayTool, dir: string, port: number): string {
  const socket = quote(relaySocket(dir));
  if (relay.kind === "socat") {
    return `${quote(relay.path)} UNIX-LISTEN:${socket},fork,backlog=${BACKLOG} TCP:127.0.0.1:${port}`;
  }
  const dial = relay.dial === false ? "" : ` ${quote(`${dir}/relay/${RELAY_DIAL_SOCKET}`)}`;
  return `${quote(relay.path)} --listen ${socket} ${port}${dial}`;
}

function quote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
