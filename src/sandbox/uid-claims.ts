// Host-wide claims on worker uids, so two daemons on one host (each with the default uid_range)
// never hand the same uid to two live workers: one could otherwise read and write the other's
// files and signal its processes.
//
// A claim is a file `<dir>/<uid>` created exclusively (O_EXCL), holding the pid and start time
// (so a recycled pid is not mistaken for it) of the process whose death ends the worker: the
// claiming daemon, or for a restartable worker its generation's reaper (src/pool/reaper.ts),
// which lives as long as any daemon holds the generation (the old one, its successor, both), so
// a claim stays held across a restart with no moment naming a dead owner. A claim whose owner
// is gone (SIGKILL leaves its files; its workers died with it) is taken over, under a lock directory
// `<dir>/<uid>.lock` (mkdir is atomic), after reading it again: a fresh claim is only ever
// created with O_EXCL, so nobody can replace the stale file while the lock is held, and two
// daemons never both take one stale claim. Synchronous, like the uid pool that calls it.

import { mkdirSync, readFileSync, rmdirSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** Default home of the claims: root-only, shared by every daemon of the host. */
export const UID_CLAIMS_DIR = "/run/herd-uids";
/** A lock directory older than this was left by a daemon that died holding it. */
const STALE_LOCK_MS = 10_000;

function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

/** Is the process named by a claim's content (`<pid> <start time>`) still the one it names? */
export function alive(content: string): boolean {
  const [pid, started] = content.trim().split(" ");
  const n = Number(pid);
  return Number.isInteger(n) && n > 0 && startTime(n) === started;
}

/** The process a claim names: its death frees the uid. */
export interface ClaimOwner {
  pid: number;
  /** Its start time in clock ticks after boot (/proc/<pid>/stat field 22). */
  startTime: number;
}

export class UidClaims {
  private readonly mine: string;

  constructor(private readonly dir = UID_CLAIMS_DIR) {
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    this.mine = `${process.pid} ${startTime(process.pid) ?? "?"}\n`;
  }

  /** Claims `uid` for `owner` (default: this daemon); false when a live owner holds it. */
  claim(uid: number, owner?: ClaimOwner): boolean {
    const file = join(this.dir, String(uid));
    const content = this.content(owner);
    if (this.create(file, content)) return true;
    const seen = this.read(file);
    if (seen === undefined) return this.create(file, content);
    if (alive(seen)) return false;
    const lock = `${file}.lock`;
    if (!this.lock(lock)) return false;
    try {
      if (this.read(file) !== seen) return false;
      unlinkSync(file);
      return this.create(file, content);
    } finally {
      rmdirSync(lock);
    }
  }

  /** Gives `uid` back (only a claim naming `owner`, default this daemon, is removed). */
  release(uid: number, owner?: ClaimOwner): void {
    const file = join(this.dir, String(uid));
    if (this.read(file) === this.content(owner)) unlinkSync(file);
  }

  private content(owner: ClaimOwner | undefined): string {
    return owner ? `${owner.pid} ${owner.startTime}\n` : this.mine;
  }

  private create(file: string, content: string): boolean {
    try {
      writeFileSync(file, content, { flag: "wx", mode: 0o644 });
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
      throw err;
    }
  }

  private read(file: string): string | undefined {
    try {
      return readFileSync(file, "utf8");
    } catch {
      return undefined;
    }
  }

  private lock(lock: string): boolean {
    try {
      mkdirSync(lock);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    try {
      if (Date.now() - statSync(lock).mtimeMs > STALE_LOCK_MS) rmdirSync(lock);
    } catch {}
    return false;
  }
}
