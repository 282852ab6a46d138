// The sandbox launcher: src/pool's SandboxFactory, backed by bubblewrap, herd's native relay
// (or socat) and setpriv.
//
// Every pool resolves its `default` isolation keys to the strongest this host gives
// (host-support.ts) and reports, per key, what it got (containment.ts). A pool that gets
// anything beyond its process tree has a PoolSandbox, which owns a directory in the daemon's
// runtime directory (runtime-dir.ts, hidden from every worker), with one sub-directory per
// prepared or live worker:
//   <runtime>/<pool n>/<n>/relay/http.sock   the relay into the worker's network namespace (0700)
//   <runtime>/<pool n>/<n>/home/             the worker's HOME (its uid, 0700)
//   <runtime>/<pool n>/<n>/resolv.conf       network: egress: its /etc/resolv.conf (egress/)
// Invariants: a worker's directory, uid and (egress) network exist from `launch` until
// `release`, which the pool calls once the tree is gone; `close` removes the pool's directory
// (and its egress filter) after the pool released every worker. A uid is claimed host-wide
// (uid-claims.ts) while it is held. Short numeric names keep socket paths under the 108-byte
// limit. Single-threaded.
//
// Restart (src/cli/restart.ts): a worker launched with a `lifeline` has no --die-with-parent
// (its generation's cgroup.kill ends it) and its uid claim names the lifeline's process, which
// lives as long as any daemon holds the generation, so the claim is held across the hand-over
// whichever daemon dies. The successor `adopt`s each handed worker: it moves the worker's
// directory into its own pool directory (the worker's mount namespace bound it by inode, so the
// worker sees no change; the relay socket is the same one) and leaves a symlink at the old path
// for the connections the predecessor still serves; the uid is held again, and released with
// the worker. Its mount namespace hides the parent of every generation's runtime directory
// (runtime-dir.ts), so the successor's is out of its sight as its own daemon's was: a worker of
// the daemon's own uid (isolation.user: inherit) restarts too. A `network: egress` worker's
// slot claim names the lifeline's process too; its namespace and veth are handed as they are,
// and the successor moves the veth from the predecessor's nftables table into its own, under
// its own pool's chain (egress/worker-net.ts): the allowlist of the config the successor loaded
// applies to it from then on (a pool that is no longer `egress` there leaves it in the
// predecessor's table, under the old one).

import {
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readlinkSync,
  realpathSync,
  renameSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { isAbsolute, join } from "node:path";
import type { ContainmentRow, IsolationOptions, PoolOptions } from "../core/index.ts";
import { HerdError } from "../core/index.ts";
import type {
  PoolSandbox,
  SandboxFactory,
  SandboxLaunch,
  SandboxLifeline,
  SandboxRecord,
} from "../pool/index.ts";
import { bwrapArgv, codeUnderTmp, type RelayTool, relaySocket } from "./bwrap-argv.ts";
import { containmentRows } from "./containment.ts";
import { adoptWorkerNet, PoolEgress, type WorkerNet } from "./egress/index.ts";
import {
  isolationProblems,
  resolveDefaults,
  sandboxTools,
  socatRelay,
  workerIdentity,
} from "./host-support.ts";
import { acquireRuntimeDir, releaseRuntimeDir, runtimeParent } from "./runtime-dir.ts";
import { seccompFilter } from "./seccomp.ts";
import { UidClaims } from "./uid-claims.ts";
import { UidPool } from "./uid-pool.ts";

export interface LauncherOptions {
  /**
   * Files no worker may read (the daemon's config file); hidden behind /dev/null. A function is
   * asked at each launch (a file may appear after the pools started).
   */
  hide?: readonly string[] | (() => readonly string[]);
  /** Where uid claims live (default /run/herd-uids; tests use a directory of their own). */
  uidClaimsDir?: string;
  /**
   * The relay into a private network: herd's native relay where it was built, else socat (the
   * default picks); "socat" forces the fallback, "native without dial" the native relay with no
   * dial socket, so tunnels pass it too (tests and benches compare them).
   */
  relay?: "socat" | "native without dial";
}

function relayFor(choice: LauncherOptions["relay"]): RelayTool | undefined {
  if (choice === "socat") return socatRelay();
  const { relay } = sandboxTools();
  return choice === "native without dial" && relay?.kind === "native"
    ? { ...relay, dial: false }
    : relay;
}

/**
 * Pools given a sandbox in this process, by any launcher: each pool's directory in the
 * process's runtime directory is its number (two launchers' pools must not share one).
 */
let pools = 0;

/** Bound of a private tmpfs when the pool sets no memory limit. */
const DEFAULT_TMPFS_BYTES = 1 << 30;

function sandboxed({ user, network, filesystem }: IsolationOptions): boolean {
  return user !== "inherit" || network !== "host" || filesystem !== "host";
}

export function sandboxLauncher(opts: LauncherOptions = {}): SandboxFactory {
  const heldUids = new Set<number>();
  let claims: UidClaims | undefined;
  const hide = opts.hide ?? [];
  return (options) => {
    const code = [
      options.cwd ?? process.cwd(),
      ...options.command.filter((arg) => isAbsolute(arg)),
    ];
    const { isolation, fallbacks } = resolveDefaults(options.isolation, code);
    const problems = isolationProblems(isolation);
    if (problems.length > 0) {
      throw new HerdError(
        "failed_precondition",
        problems.map((p) => `workers.${options.name}.isolation.${p.key}: ${p.message}`).join("; "),
      );
    }
    const boxed = sandboxed(isolation);
    const tmpfsBytes = options.limits.memoryBytes ?? DEFAULT_TMPFS_BYTES;
    const filter = boxed ? seccompFilter() : undefined;
    const egress =
      isolation.network === "egress" ? new PoolEgress(options.name, isolation.egress) : undefined;
    const containment = containmentRows({
      requested: options.isolation,
      resolved: isolation,
      fallbacks,
      sandboxed: boxed,
      ...(boxed && !filter
        ? { seccompMissing: `herd has no syscall table for ${process.arch}` }
        : {}),
      daemonUid: process.getuid?.() ?? 0,
      tmpfsBytes,
      ...(egress ? { egress: egress.description } : {}),
    });
    if (!boxed) return { containment };
    try {
      if (isolation.user === "auto") claims ??= new UidClaims(opts.uidClaimsDir);
      const sandbox = new BwrapPoolSandbox(
        { ...options, isolation },
        {
          hide: typeof hide === "function" ? hide : () => hide,
          uids:
            isolation.user === "auto"
              ? new UidPool(...isolation.uidRange, heldUids, claims)
              : undefined,
          n: ++pools,
          filter,
          tmpfsBytes,
          containment,
          egress,
          relay: relayFor(opts.relay),
        },
      );
      return { sandbox, containment };
    } catch (err) {
      egress?.close();
      throw err;
    }
  };
}

interface PoolSandboxDeps {
  hide: () => readonly string[];
  uids: UidPool | undefined;
  /** The pool's number within this launcher: its directory's name. */
  n: number;
  filter: Buffer | undefined;
  tmpfsBytes: number;
  containment: ContainmentRow[];
  /** network: egress: the pool's filter, closed with the pool. */
  egress: PoolEgress | undefined;
  relay: RelayTool | undefined;
}

class BwrapPoolSandbox implements PoolSandbox {
  readonly containment: ContainmentRow[];
  private readonly root: string;
  private readonly fixed: { uid: number; gid: number } | undefined;
  private readonly seccomp: string | undefined;
  private seq = 0;

  constructor(
    private readonly options: PoolOptions,
    private readonly deps: PoolSandboxDeps,
  ) {
    const identity = workerIdentity(options.isolation.user);
    if (typeof identity === "string") throw new HerdError("failed_precondition", identity);
    const daemonUid = process.getuid?.() ?? 0;
    if (!identity.perWorker && identity.uid !== daemonUid) this.fixed = identity;
    this.containment = deps.containment;
    this.root = join(acquireRuntimeDir(), deps.n.toString(36));
    mkdirSync(this.root, { mode: 0o711 });
    chmodSync(this.root, 0o711);
    if (deps.filter) {
      this.seccomp = join(this.root, "seccomp.bpf");
      writeFileSync(this.seccomp, deps.filter, { mode: 0o644 });
    }
  }

  launch(worker: { id: string; port: number; lifeline?: SandboxLifeline }): SandboxLaunch {
    const tools = sandboxTools();
    const dir = join(this.root, (++this.seq).toString(36));
    const owner = worker.lifeline;
    const uid = this.deps.uids?.take(owner);
    const ids = uid !== undefined ? { uid, gid: uid } : this.fixed;
    let net: ReturnType<PoolEgress["launch"]> | undefined;
    try {
      mkdirSync(join(dir, "relay"), { recursive: true, mode: 0o700 });
      chmodSync(dir, 0o711);
      const home = join(dir, "home");
      mkdirSync(home, { mode: 0o700 });
      if (ids) chownSync(home, ids.uid, ids.gid);
      const { network, filesystem } = this.options.isolation;
      net = this.deps.egress?.launch(dir, owner?.pid ?? process.pid);
      const contained = network !== "host";
      const relay = this.deps.relay ?? socatRelay();
      const wrapper = bwrapArgv(
        {
          dir,
          root: runtimeParent(),
          port: worker.port,
          dieWithParent: owner === undefined,
          ...(ids ?? {}),
          network: contained,
          ...(net ? { netns: net.netnsPath, resolvConf: net.resolvConf } : {}),
          filesystem: filesystem === "private",
          hide: this.deps.hide().filter((file) => existsSync(file)),
          keep: codeUnderTmp([
            this.options.cwd ?? process.cwd(),
            ...this.options.command.filter((arg) => isAbsolute(arg)),
          ]),
          tmpfsBytes: this.deps.tmpfsBytes,
          runLock: existsSync("/run/lock"),
          ...(this.seccomp ? { seccomp: this.seccomp } : {}),
        },
        {
          bwrap: tools.bwrap!,
          relay,
          setpriv: tools.setpriv ?? "setpriv",
          nsenter: tools.nsenter ?? "nsenter",
        },
      );
      if (owner) markLifeline(dir, owner);
      return {
        wrapper,
        env: { HOME: home },
        ...this.held({ dir, relay: contained, uid, owner, net }),
      };
    } catch (err) {
      net?.release();
      rmSync(dir, { recursive: true, force: true });
      rmSync(`${dir}.lifeline`, { force: true });
      if (uid !== undefined) this.deps.uids?.give(uid, owner);
      throw err;
    }
  }

  adopt(record: SandboxRecord): SandboxLaunch {
    const handed = String(record.dir);
    // After a successor that died before serving, the path may be a symlink to its directory.
    const real = realpathSync(handed);
    let dir = real;
    if (!real.startsWith(`${this.root}/`)) {
      dir = join(this.root, `a${(++this.seq).toString(36)}`);
      renameSync(real, dir);
    }
    if (handed !== dir) {
      if (handed !== real) unlinkSync(handed);
      try {
        symlinkSync(dir, handed); // the predecessor's kept connections still dial this path
      } catch {} // its directory is gone already: nobody dials it
    }
    const uid = typeof record.uid === "number" ? record.uid : undefined;
    if (uid !== undefined) this.deps.uids?.hold(uid);
    const owner =
      typeof record.ownerPid === "number"
        ? { pid: record.ownerPid, startTime: Number(record.ownerStart) }
        : undefined;
    let net: WorkerNet | undefined;
    if (typeof record.netSlot === "number") {
      const handedNet = { slot: record.netSlot, table: Number(record.netTable) };
      const netOwner = owner?.pid ?? process.pid;
      // A pool no longer `egress` here keeps it in the predecessor's filter until it ends.
      net = this.deps.egress
        ? this.deps.egress.adopt(handedNet, netOwner)
        : adoptWorkerNet(undefined, handedNet, netOwner);
    }
    for (const old of new Set([real, handed])) {
      if (old !== dir) rmSync(`${old}.lifeline`, { force: true });
    }
    if (owner) markLifeline(dir, owner);
    return {
      wrapper: [],
      env: {},
      ...this.held({ dir, relay: record.relay === 1, uid, owner, net, alias: handed }),
    };
  }

  /** What a launched or adopted worker holds until `release` (or `handOff`). */
  private held(h: {
    dir: string;
    relay: boolean;
    uid: number | undefined;
    owner: SandboxLifeline | undefined;
    net?: WorkerNet | undefined;
    /** A symlink to `dir` left for the predecessor's connections. */
    alias?: string;
  }): Pick<SandboxLaunch, "endpoint" | "privateNetwork" | "release" | "handOff"> {
    let held = true;
    return {
      ...(h.relay ? { endpoint: { socketPath: relaySocket(h.dir) } } : {}),
      privateNetwork: h.relay,
      release: () => {
        if (!held) return;
        held = false;
        h.net?.release();
        rmSync(h.dir, { recursive: true, force: true });
        rmSync(`${h.dir}.lifeline`, { force: true });
        if (h.alias) removeAlias(h.alias, h.dir);
        if (h.uid !== undefined) this.deps.uids?.give(h.uid, h.owner);
      },
      handOff: () => {
        held = false;
        const net = h.net?.handOff();
        return {
          dir: h.dir,
          relay: h.relay ? 1 : 0,
          ...(net ? { netSlot: net.slot, netTable: net.table } : {}),
          ...(h.uid !== undefined ? { uid: h.uid } : {}),
          ...(h.owner ? { ownerPid: h.owner.pid, ownerStart: h.owner.startTime } : {}),
        };
      },
    };
  }

  close(): void {
    this.deps.egress?.close();
    rmSync(this.root, { recursive: true, force: true });
    releaseRuntimeDir();
  }
}

/**
 * Beside the worker's directory (out of its sight): what keeps a dead daemon's runtime directory
 * from the stale sweep while the worker may live (runtime-dir.ts).
 */
function markLifeline(dir: string, owner: SandboxLifeline): void {
  writeFileSync(`${dir}.lifeline`, `${owner.pid} ${owner.startTime}\n`, { mode: 0o600 });
}

function removeAlias(alias: string, dir: string): void {
  try {
    if (lstatSync(alias).isSymbolicLink() && readlinkSync(alias) === dir) unlinkSync(alias);
  } catch {}
}
