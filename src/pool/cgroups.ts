// Per-worker cgroups: one directory per worker under the daemon's own
// `herd-<pidns>-<pid>-<start>` (named by cgroup-owner.ts) in every hierarchy the host lets us
// write (v2 for cgroup.kill and, where delegated, limits; v1 for the controllers the host
// keeps there, joined only for a limit the pool sets).
//
// Invariant: a worker joins its cgroups before it execs the real command (the spawn wrapper
// writes its own pid into each `cgroup.procs`), so every descendant is inside from birth.
// A generation's directory is named after its reaper (reaper.ts), which lives as long as some
// daemon owns the generation's workers (across restarts too); directories whose reaper
// provably died are swept at the next start. All calls but removal
// are synchronous filesystem writes to cgroupfs, which the kernel completes immediately (the
// files read or written per session are kept open until removal: cgroup-file.ts). Removal
// is retried for a while: a tree counts as gone once its processes are zombies, but zombie
// setsid grandchildren keep their cgroup busy until the host's init reaps them.

import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  writeFileSync,
} from "node:fs";
import { rmdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Logger, ResourceLimits } from "../core/index.ts";
import { CgroupFile } from "./cgroup-file.ts";
import {
  cgroupName,
  type DaemonIdentity,
  ownerOf,
  ownIdentity,
  provablyDead,
} from "./cgroup-owner.ts";
import type { CgroupMounts } from "./host-capabilities.ts";

const CPU_PERIOD_US = 100_000;
/** How long removal keeps retrying a cgroup that zombies still occupy. */
const REMOVE_RETRY_MS = 2_000;

function tryWrite(file: string, value: string): boolean {
  try {
    writeFileSync(file, value);
    return true;
  } catch {
    return false;
  }
}

function readNumbers(file: string | (() => string)): number[] {
  try {
    return (typeof file === "string" ? readFileSync(file, "utf8") : file())
      .split("\n")
      .filter(Boolean)
      .map((line) => Number.parseInt(line, 10));
  } catch {
    return [];
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Removes a cgroup directory and its children, deepest first (a populated one stays).
 * True once the directory no longer exists.
 */
function removeTree(dir: string, kill = true): boolean {
  let entries: string[] = [];
  try {
    entries = readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
  } catch {
    return true;
  }
  for (const name of entries) removeTree(join(dir, name), kill);
  if (kill) tryWrite(join(dir, "cgroup.kill"), "1");
  try {
    rmdirSync(dir);
  } catch {}
  return !existsSync(dir);
}

/** Calls `remove` until it reports success, backing off, for at most REMOVE_RETRY_MS. */
async function retryRemoval(
  remove: () => boolean | Promise<boolean>,
  opts: { ref: boolean },
): Promise<void> {
  for (let waited = 0, delay = 2; !(await remove()) && waited < REMOVE_RETRY_MS; delay *= 2) {
    await sleep(delay, undefined, opts);
    waited += delay;
  }
}

async function rmdirGone(dir: string): Promise<boolean> {
  try {
    await rmdir(dir);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "ENOENT";
  }
}

/** A WorkerCgroup as a successor daemon rebuilds it (restart). */
export interface WorkerCgroupRecord {
  procsFiles: string[];
  v2Dir: string | undefined;
  dirs: string[];
  memoryDir: string | undefined;
  memoryIsV2: boolean;
}

export class WorkerCgroup {
  static from(r: WorkerCgroupRecord): WorkerCgroup {
    return new WorkerCgroup(r.procsFiles, r.v2Dir, r.dirs, r.memoryDir, r.memoryIsV2);
  }

  record(): WorkerCgroupRecord {
    const { procsFiles, v2Dir, dirs, memoryDir, memoryIsV2 } = this;
    return { procsFiles, v2Dir, dirs, memoryDir, memoryIsV2 };
  }

  constructor(
    /** cgroup.procs files the worker must join, v2 first. */
    readonly procsFiles: string[],
    /** The worker's v2 cgroup directory, if it has one (cpu-usage.ts reads its cpu.stat). */
    readonly v2Dir: string | undefined,
    readonly dirs: string[],
    readonly memoryDir: string | undefined,
    readonly memoryIsV2: boolean,
  ) {}

  /**
   * The files read or written per session, kept open (cgroup-file.ts), by mode and path, until
   * the cgroup's removal closes them: from then on each call opens and closes its file again,
   * so that nothing is left open on a cgroup that is gone.
   */
  #files: Map<string, CgroupFile> | undefined = new Map();

  #read(path: string): string {
    return this.#file(path, "r")?.read() ?? readFileSync(path, "utf8");
  }

  #write(path: string, value: string): void {
    const file = this.#file(path, "w");
    if (file) file.write(value);
    else writeFileSync(path, value);
  }

  #file(path: string, mode: "r" | "w"): CgroupFile | undefined {
    const key = `${mode} ${path}`;
    let file = this.#files?.get(key);
    if (!file && this.#files) {
      file = new CgroupFile(path, mode);
      this.#files.set(key, file);
    }
    return file;
  }

  #closeFiles(): void {
    for (const file of this.#files?.values() ?? []) file.close();
    this.#files = undefined;
  }

  get canKill(): boolean {
    return this.v2Dir !== undefined;
  }

  /** Kills every process in the cgroup at once; false when v2 cgroup.kill is unavailable. */
  kill(): boolean {
    return this.v2Dir !== undefined && tryWrite(join(this.v2Dir, "cgroup.kill"), "1");
  }

  /** Every pid still inside, from whichever hierarchy tracks them. */
  pids(): number[] {
    for (const file of this.procsFiles) {
      const pids = readNumbers(() => this.#read(file));
      if (pids.length > 0 || existsSync(file)) return pids;
    }
    return [];
  }

  /** How many processes the kernel OOM-killed in this cgroup. */
  oomKills(): number {
    if (!this.memoryDir) return 0;
    const file = join(this.memoryDir, this.memoryIsV2 ? "memory.events" : "memory.oom_control");
    try {
      const match = /^oom_kill (\d+)$/m.exec(readFileSync(file, "utf8"));
      return match ? Number(match[1]) : 0;
    } catch {
      return 0;
    }
  }

  /** CPU time of every process that ran in the cgroup (v2 cpu.stat); undefined without v2. */
  cpuSeconds(): number | undefined {
    if (!this.v2Dir) return undefined;
    try {
      const match = /^usage_usec (\d+)$/m.exec(this.#read(join(this.v2Dir, "cpu.stat")));
      return match ? Number(match[1]) / 1e6 : undefined;
    } catch {
      return undefined;
    }
  }

  /** Peak memory since the cgroup was made or last reset; undefined without a memory cgroup. */
  memoryPeak(): number | undefined {
    if (!this.memoryDir) return undefined;
    const file = this.memoryIsV2 ? "memory.peak" : "memory.max_usage_in_bytes";
    const [bytes] = readNumbers(() => this.#read(join(this.memoryDir!, file)));
    return bytes !== undefined && Number.isFinite(bytes) ? bytes : undefined;
  }

  /** Starts the peak afresh (v1 only: v2's memory.peak covers the cgroup's life). */
  resetMemoryPeak(): void {
    if (this.memoryDir && !this.memoryIsV2) {
      try {
        this.#write(join(this.memoryDir, "memory.max_usage_in_bytes"), "0");
      } catch {}
    }
  }

  remove(): void {
    this.#closeFiles();
    for (const dir of this.dirs) removeTree(dir);
  }

  /**
   * Removes the directories in the background: rmdir on cgroupfs waits for an RCU grace
   * period, up to ~20 ms each, which must not delay a release or block the event loop; and
   * zombies awaiting the host's init may still occupy them. Never holds the daemon open.
   */
  removeInBackground(): void {
    this.#closeFiles();
    for (const dir of this.dirs) retryRemoval(() => rmdirGone(dir), { ref: false }).catch(() => {});
  }
}

export class CgroupTree {
  private readonly roots: { dir: string; v2: boolean; controller?: string }[] = [];
  private readonly appliedWarned = new Set<string>();

  constructor(
    private readonly mounts: CgroupMounts,
    private readonly logger: Logger,
    /** Whose the directory is: the generation's reaper (default: this process). */
    owner: DaemonIdentity = ownIdentity(),
  ) {
    const self = ownIdentity();
    const name = cgroupName(owner);
    const bases: { base: string; v2: boolean; controller?: string }[] = [];
    if (mounts.v2) bases.push({ base: mounts.v2, v2: true });
    for (const [controller, base] of mounts.v1) bases.push({ base, v2: false, controller });
    for (const { base, v2, controller } of bases) {
      sweepStale(base, self, logger);
      const dir = join(base, name);
      try {
        mkdirSync(dir, { recursive: true });
        if (v2 && mounts.v2Controllers.size > 0) {
          const enable = [...mounts.v2Controllers].map((c) => `+${c}`).join(" ");
          // A delegated cgroup (systemd Delegate=yes) holding the daemon itself refuses to enable
          // controllers for children (no-internal-process rule): the daemon first moves into a
          // leaf of its own, as systemd's delegation docs prescribe. Unverified on hosts whose
          // v2 tree offers no controllers (like the hybrid one the tests run on).
          if (
            !tryWrite(join(base, "cgroup.subtree_control"), enable) &&
            !(moveSelfToLeaf(base) && tryWrite(join(base, "cgroup.subtree_control"), enable))
          ) {
            mounts.v2Controllers.clear();
          } else if (!tryWrite(join(dir, "cgroup.subtree_control"), enable))
            mounts.v2Controllers.clear();
        }
        this.roots.push({ dir, v2, ...(controller ? { controller } : {}) });
      } catch (err) {
        logger.warn({ dir, err: String(err) }, "cannot create cgroup; that guarantee is off");
      }
    }
  }

  /** Makes the worker's cgroups and applies limits; says once per pool which limits are off. */
  forWorker(pool: string, workerId: string, limits: ResourceLimits): WorkerCgroup {
    const procsFiles: string[] = [];
    const dirs: string[] = [];
    let v2Dir: string | undefined;
    let memoryDir: string | undefined;
    let memoryIsV2 = false;
    const applied = new Set<string>();
    for (const root of this.roots) {
      // A v1 controller is joined only for a limit the pool sets: joining costs a kernel
      // migration per hierarchy, and a shared cpu cgroup throttles a mass start (issue 10,
      // item 7). v2 is always joined: it carries cgroup.kill and tells when a tree is gone.
      // v1 memory is joined for accounting too (a session's memory peak, issue 21) where v2
      // has no memory controller: it limits nothing it was not asked to.
      const accounting = root.controller === "memory" && !this.mounts.v2Controllers.has("memory");
      if (!root.v2 && !accounting && !limitFor(root.controller!, limits)) continue;
      const dir = join(root.dir, workerId);
      try {
        mkdirSync(dir);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") continue;
      }
      dirs.push(dir);
      procsFiles.push(join(dir, "cgroup.procs"));
      const controllers = root.v2 ? this.mounts.v2Controllers : new Set([root.controller!]);
      if (root.v2) v2Dir = dir;
      if (controllers.has("memory")) {
        memoryDir = dir;
        memoryIsV2 = root.v2;
      }
      for (const c of controllers) {
        if (applyLimit(dir, root.v2, c, limits)) applied.add(c);
      }
    }
    for (const controller of ["memory", "cpu", "pids"]) {
      const key = `${pool}/${controller}`;
      if (
        limitFor(controller, limits) !== undefined &&
        !applied.has(controller) &&
        !this.appliedWarned.has(key)
      ) {
        this.appliedWarned.add(key);
        this.logger.warn(
          { pool, limit: controller },
          `${controller} limit of pool ${pool} is NOT enforced: no writable ${controller} cgroup on this host`,
        );
      }
    }
    return new WorkerCgroup(procsFiles, v2Dir, dirs, memoryDir, memoryIsV2);
  }

  /** The daemon-wide v2 `cgroup.kill` that ends every worker of this daemon at once. */
  get killAllFile(): string | undefined {
    const v2 = this.roots.find((r) => r.v2);
    return v2 ? join(v2.dir, "cgroup.kill") : undefined;
  }

  /**
   * Removes a predecessor's daemon-wide cgroup once none of its workers is left, killing
   * nothing: the predecessor may still own workers there while it serves its last connections.
   */
  async removeHeld(killFile: string): Promise<void> {
    await retryRemoval(() => removeTree(dirname(killFile), false), { ref: false });
  }

  /** Removes the daemon's cgroups, waiting briefly for zombies of the last trees to be reaped. */
  async destroy(): Promise<void> {
    await Promise.all(
      this.roots.map((root) => retryRemoval(() => removeTree(root.dir), { ref: true })),
    );
  }
}

function limitFor(controller: string, limits: ResourceLimits): number | undefined {
  if (controller === "memory") return limits.memoryBytes;
  if (controller === "cpu") return limits.cpus;
  if (controller === "pids") return limits.pids;
  return undefined;
}

function applyLimit(dir: string, v2: boolean, controller: string, limits: ResourceLimits): boolean {
  switch (controller) {
    case "memory": {
      if (limits.memoryBytes === undefined) return false;
      const bytes = String(limits.memoryBytes);
      if (v2) {
        tryWrite(join(dir, "memory.swap.max"), "0");
        return tryWrite(join(dir, "memory.max"), bytes);
      }
      const ok = tryWrite(join(dir, "memory.limit_in_bytes"), bytes);
      tryWrite(join(dir, "memory.memsw.limit_in_bytes"), bytes);
      return ok;
    }
    case "cpu": {
      if (limits.cpus === undefined) return false;
      const quota = Math.max(1_000, Math.round(limits.cpus * CPU_PERIOD_US));
      return v2
        ? tryWrite(join(dir, "cpu.max"), `${quota} ${CPU_PERIOD_US}`)
        : tryWrite(join(dir, "cpu.cfs_period_us"), String(CPU_PERIOD_US)) &&
            tryWrite(join(dir, "cpu.cfs_quota_us"), String(quota));
    }
    case "pids":
      return limits.pids !== undefined && tryWrite(join(dir, "pids.max"), String(limits.pids));
    default:
      return false;
  }
}

function moveSelfToLeaf(base: string): boolean {
  const leaf = join(base, "herd-daemon");
  try {
    mkdirSync(leaf, { recursive: true });
  } catch {
    return false;
  }
  return tryWrite(join(leaf, "cgroup.procs"), String(process.pid));
}

/**
 * Removes the cgroups of daemons that are provably dead (cgroup-owner.ts), killing what is
 * left in them. A legacy `herd-<pid>` directory names no PID namespace, so a pid we cannot
 * see proves nothing: it is removed only when nothing runs in it, and never killed.
 */
function sweepStale(base: string, self: DaemonIdentity, logger: Logger): void {
  let names: string[] = [];
  try {
    names = readdirSync(base).filter((n) => n.startsWith("herd-"));
  } catch {
    return;
  }
  for (const name of names) {
    const owner = ownerOf(name);
    const dir = join(base, name);
    if (owner.kind === "owned" && provablyDead(owner.id, self)) {
      logger.info({ dir }, "removing the cgroup of a dead herd daemon");
      // Killed processes leave their cgroup a moment later; the retries wait for that.
      retryRemoval(() => removeTree(dir), { ref: false }).catch(() => {});
    } else if (owner.kind === "legacy" && !pidAlive(owner.pid) && !populated(dir)) {
      removeTree(dir);
    }
  }
}

/** Any process in the cgroup or below it. */
function populated(dir: string): boolean {
  if (readNumbers(join(dir, "cgroup.procs")).length > 0) return true;
  try {
    return readdirSync(dir, { withFileTypes: true }).some(
      (e) => e.isDirectory() && populated(join(dir, e.name)),
    );
  } catch {
    return false;
  }
}
