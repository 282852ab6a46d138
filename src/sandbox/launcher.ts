// The sandbox launcher: src/pool's SandboxFactory, backed by bubblewrap, socat and setpriv.
//
// One PoolSandbox per pool owns a daemon-private directory (mode 0711: workers may pass through
// to their own home, never list it) with one sub-directory per prepared or live worker:
//   <root>/<n>/relay/http.sock   the relay into the worker's network namespace (root, 0700)
//   <root>/<n>/home/             the worker's HOME (its uid, 0700)
// Invariants: a worker's directory and uid exist from `launch` until `release`, which the pool
// calls once the tree is gone; `close` removes the root after the pool released every worker;
// a root named after a daemon pid that no longer runs is removed when the next sandbox starts.
// Short numeric names keep socket paths under the 108-byte limit. Single-threaded.

import { chmodSync, chownSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { isAbsolute, join } from "node:path";
import type { PoolOptions } from "../core/index.ts";
import { HerdError } from "../core/index.ts";
import type { PoolSandbox, SandboxFactory, SandboxLaunch } from "../pool/index.ts";
import { bwrapArgv, codeUnderTmp, relaySocket } from "./bwrap-argv.ts";
import { isolationProblems, sandboxTools, workerIdentity } from "./host-support.ts";
import { UidPool } from "./uid-pool.ts";

export interface LauncherOptions {
  /** Files no worker may read (the daemon's config file); hidden behind /dev/null. */
  hide?: readonly string[];
}

export function sandboxLauncher(opts: LauncherOptions = {}): SandboxFactory {
  const heldUids = new Set<number>();
  return (options) => new BwrapPoolSandbox(options, opts.hide ?? [], heldUids);
}

/** What the pool's workers get, in words (the daemon logs it once per pool). */
function describeIsolation(options: PoolOptions): string {
  const { user, uidRange, network, filesystem } = options.isolation;
  const who =
    user === "auto"
      ? `a uid of its own from ${uidRange[0]}-${uidRange[1]}`
      : user === "inherit"
        ? "the daemon's uid"
        : "uid" in user
          ? `uid ${user.uid}`
          : `user ${user.name}`;
  return [
    `user: ${who}`,
    network === "private"
      ? "network: private (own namespace, reached through a relay socket)"
      : "network: host",
    filesystem === "private"
      ? "filesystem: private (own /tmp and HOME)"
      : "filesystem: host (own HOME)",
    "PID namespace, private /dev/shm, the config file hidden",
  ].join("; ");
}

const PREFIX = "herd-sandbox-";

/**
 * Sandbox roots of daemons that died without closing (SIGKILL): their workers died with them
 * (pdeathsig, the reaper), their directories did not. The daemon's pid is in the name.
 */
function removeOrphans(base: string): void {
  let names: string[] = [];
  try {
    names = readdirSync(base).filter((n) => n.startsWith(PREFIX));
  } catch {}
  for (const name of names) {
    const pid = Number(name.slice(PREFIX.length).split("-")[0]);
    if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) continue;
    try {
      process.kill(pid, 0);
      continue; // that daemon still runs
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ESRCH") continue;
    }
    rmSync(join(base, name), { recursive: true, force: true });
  }
}

class BwrapPoolSandbox implements PoolSandbox {
  readonly description: string;
  private readonly root: string;
  private readonly uids: UidPool | undefined;
  private readonly fixed: { uid: number; gid: number } | undefined;
  private seq = 0;

  constructor(
    private readonly options: PoolOptions,
    private readonly hide: readonly string[],
    heldUids: Set<number>,
  ) {
    const problems = isolationProblems(options.isolation);
    if (problems.length > 0) {
      throw new HerdError(
        "failed_precondition",
        problems.map((p) => `workers.${options.name}.isolation.${p.key}: ${p.message}`).join("; "),
      );
    }
    const identity = workerIdentity(options.isolation.user);
    if (typeof identity === "string") throw new HerdError("failed_precondition", identity);
    const daemonUid = process.getuid?.() ?? 0;
    if (identity.perWorker) this.uids = new UidPool(...options.isolation.uidRange, heldUids);
    else if (identity.uid !== daemonUid) this.fixed = identity;
    this.description = describeIsolation(options);
    const base = daemonUid === 0 ? "/run" : tmpdir();
    removeOrphans(base);
    this.root = mkdtempSync(join(base, `${PREFIX}${process.pid}-`));
    chmodSync(this.root, 0o711);
  }

  launch(worker: { id: string; port: number }): SandboxLaunch {
    const tools = sandboxTools();
    const dir = join(this.root, (++this.seq).toString(36));
    const uid = this.uids?.take();
    const ids = uid !== undefined ? { uid, gid: uid } : this.fixed;
    try {
      mkdirSync(join(dir, "relay"), { recursive: true, mode: 0o700 });
      chmodSync(dir, 0o711);
      const home = join(dir, "home");
      mkdirSync(home, { mode: 0o700 });
      if (ids) chownSync(home, ids.uid, ids.gid);
      const { network, filesystem } = this.options.isolation;
      const wrapper = bwrapArgv(
        {
          dir,
          root: this.root,
          port: worker.port,
          ...(ids ?? {}),
          network: network === "private",
          filesystem: filesystem === "private",
          hide: this.hide,
          keep: codeUnderTmp([
            this.options.cwd ?? process.cwd(),
            ...this.options.command.filter((arg) => isAbsolute(arg)),
          ]),
        },
        { bwrap: tools.bwrap!, socat: tools.socat ?? "socat", setpriv: tools.setpriv ?? "setpriv" },
      );
      let released = false;
      return {
        wrapper,
        env: { HOME: home },
        ...(network === "private" ? { endpoint: { socketPath: relaySocket(dir) } } : {}),
        privateNetwork: network === "private",
        release: () => {
          if (released) return;
          released = true;
          rmSync(dir, { recursive: true, force: true });
          if (uid !== undefined) this.uids?.give(uid);
        },
      };
    } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      if (uid !== undefined) this.uids?.give(uid);
      throw err;
    }
  }

  close(): void {
    rmSync(this.root, { recursive: true, force: true });
  }
}
