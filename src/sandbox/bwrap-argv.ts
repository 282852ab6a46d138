// The argv that contains one worker: bubblewrap makes the namespaces and mounts, then a tiny
// shell inside starts the relay (network: private), waits on the gate, and exec's the command
// under the worker's own uid with no capabilities.
//
//   [nsenter --net=<netns>]                                 network: egress (egress/worker-net.ts)
//   bwrap --die-with-parent --unshare-pid,ipc,uts[,net]     lo comes up in a new netns
//         --bind / / --dev /dev --proc /proc                 host files; private /dev, /proc
//         --tmpfs /dev/shm [--tmpfs /tmp                     (1777) shared memory, /tmp
//           --ro-bind <code dir> <code dir>]                 the worker's code, if under /tmp
//         --tmpfs <sandbox root> --bind <own dir> <own dir>  other workers' relays/homes hidden
//         --ro-bind /dev/null <config file>                  the daemon's config unreadable
//         [--ro-bind <own dir>/resolv.conf /etc/resolv.conf] egress: resolvers it may reach
//   sh -c 'socat UNIX-LISTEN:<own dir>/relay/http.sock,fork TCP:127.0.0.1:$PORT &
//          read -r _; exec setpriv --reuid U --regid G --clear-groups --no-new-privs
//          --bounding-set -all --inh-caps -all -- "$@"'
//
// Everything up to `read` runs at prepare time, so a prepared spare has paid for it. The relay
// runs as root in the worker's network namespace and listens in a root-only directory: the
// worker (never root, see host-support.ts) cannot reach its own relay's socket, nor any other.

export interface WorkerBox {
  /** The worker's own directory: relay/ (root, 0700) and home/ (the worker's uid, 0700). */
  dir: string;
  /** Directory holding every worker's directory of this pool; hidden inside the sandbox. */
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

export interface BwrapTools {
  bwrap: string;
  socat: string;
  setpriv: string;
  nsenter: string;
}

export function relaySocket(dir: string): string {
  return `${dir}/relay/http.sock`;
}

export function bwrapArgv(box: WorkerBox, tools: BwrapTools): string[] {
  const argv = box.netns ? [tools.nsenter, `--net=${box.netns}`, "--"] : [];
  argv.push(tools.bwrap, "--die-with-parent", "--unshare-pid", "--unshare-ipc", "--unshare-uts");
  if (box.network && !box.netns) argv.push("--unshare-net");
  argv.push("--bind", "/", "/", "--dev", "/dev", "--proc", "/proc");
  argv.push("--perms", "1777", "--tmpfs", "/dev/shm");
  if (box.filesystem) {
    argv.push("--perms", "1777", "--tmpfs", "/tmp");
    for (const dir of box.keep) argv.push("--ro-bind", dir, dir);
  }
  argv.push("--tmpfs", box.root, "--bind", box.dir, box.dir);
  for (const file of box.hide) argv.push("--ro-bind", "/dev/null", file);
  if (box.resolvConf) argv.push("--ro-bind", box.resolvConf, "/etc/resolv.conf");
  let script = "";
  if (box.network) {
    script += `${quote(tools.socat)} UNIX-LISTEN:${quote(relaySocket(box.dir))},fork TCP:127.0.0.1:${box.port} </dev/null & `;
  }
  script += "read -r _ || :; exec ";
  if (box.uid !== undefined) {
    script += `${quote(tools.setpriv)} --reuid ${box.uid} --regid ${box.gid ?? box.uid} --clear-groups --no-new-privs --bounding-set -all --inh-caps -all -- `;
  }
  script += '"$@" </dev/null';
  argv.push("--", "/bin/sh", "-c", script, "herd-sandbox");
  return argv;
}

function quote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
