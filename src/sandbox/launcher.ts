// The sandbox launcher: src/pool's SandboxFactory, backed by bubblewrap, socat and setpriv.
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

import { chmodSync, chownSync, existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import type { ContainmentRow, IsolationOptions, PoolOptions } from "../core/index.ts";
import { HerdError } from "../core/index.ts";
import type { PoolSandbox, SandboxFactory, SandboxLaunch } from "../pool/index.ts";
import { bwrapArgv, codeUnderTmp, relaySocket } from "./bwrap-argv.ts";
import { containmentRows } from "./containment.ts";
import { PoolEgress } from "./egress/index.ts";
import {
  isolationProblems,
  resolveDefaults,
  sandboxTools,
  workerIdentity,
} from "./host-support.ts";
import { acquireRuntimeDir, releaseRuntimeDir } from "./runtime-dir.ts";
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
}

/** Bound of a private tmpfs when the pool sets no memory limit. */
const DEFAULT_TMPFS_BYTES = 1 << 30;

function sandboxed({ user, network, filesystem }: IsolationOptions): boolean {
  return user !== "inherit" || network !== "host" || filesystem !== "host";
}

export function sandboxLauncher(opts: LauncherOptions = {}): SandboxFactory {
  const heldUids = new Set<number>();
  let claims: UidClaims | undefined;
  const hide = opts.hide ?? [];
  let pools = 0;
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
}

class BwrapPoolSandbox implements PoolSandbox {
  readonly containment: ContainmentRow[];
  private readonly runtime: string;
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
    this.runtime = acquireRuntimeDir();
    this.root = join(this.runtime, deps.n.toString(36));
    mkdirSync(this.root, { mode: 0o711 });
    chmodSync(this.root, 0o711);
    if (deps.filter) {
      this.seccomp = join(this.root, "seccomp.bpf");
      writeFileSync(this.seccomp, deps.filter, { mode: 0o644 });
    }
  }

  launch(worker: { id: string; port: number }): SandboxLaunch {
    const tools = sandboxTools();
    const dir = join(this.root, (++this.seq).toString(36));
    const uid = this.deps.uids?.take();
    const ids = uid !== undefined ? { uid, gid: uid } : this.fixed;
    let net: ReturnType<PoolEgress["launch"]> | undefined;
    try {
      mkdirSync(join(dir, "relay"), { recursive: true, mode: 0o700 });
      chmodSync(dir, 0o711);
      const home = join(dir, "home");
      mkdirSync(home, { mode: 0o700 });
      if (ids) chownSync(home, ids.uid, ids.gid);
      const { network, filesystem } = this.options.isolation;
      net = this.deps.egress?.launch(dir);
      const contained = network !== "host";
      const wrapper = bwrapArgv(
        {
          dir,
          root: this.runtime,
          port: worker.port,
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
          socat: tools.socat ?? "socat",
          setpriv: tools.setpriv ?? "setpriv",
          nsenter: tools.nsenter ?? "nsenter",
        },
      );
      let released = false;
      return {
        wrapper,
        env: { HOME: home },
        ...(contained ? { endpoint: { socketPath: relaySocket(dir) } } : {}),
        privateNetwork: contained,
        release: () => {
          if (released) return;
          released = true;
          net?.release();
          rmSync(dir, { recursive: true, force: true });
          if (uid !== undefined) this.deps.uids?.give(uid);
        },
      };
    } catch (err) {
      net?.release();
      rmSync(dir, { recursive: true, force: true });
      if (uid !== undefined) this.deps.uids?.give(uid);
      throw err;
    }
  }

  close(): void {
    this.deps.egress?.close();
    rmSync(this.root, { recursive: true, force: true });
    releaseRuntimeDir();
  }
}
