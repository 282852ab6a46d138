// Host-wide claims on worker uids, so two daemons on one host (each with the default uid_range)
// never hand the same uid to two live workers: one could otherwise read and write the other's
// files and signal its processes.
//
// A claim is a file `<dir>/<uid>` created exclusively (O_EXCL), holding the claiming daemon's
// pid and its start time (so a recycled pid is not mistaken for it). A claim whose daemon is gone
// (SIGKILL leaves its files; its workers died with it) is taken over, under a lock directory
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

/** Is the daemon named by a claim's content still the one that wrote it? */
function alive(content: string): boolean {
  const [pid, started] = content.trim().split(" ");
  const n = Number(pid);
  return Number.isInteger(n) && n > 0 && startTime(n) === started;
}

export class UidClaims {
  private readonly mine: string;

  constructor(private readonly dir = UID_CLAIMS_DIR) {
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    this.mine = `${process.pid} ${startTime(process.pid) ?? "?"}\n`;
  }

  /** Claims `uid` for this daemon; false when a live daemon holds it. */
  claim(uid: number): boolean {
    const file = join(this.dir, String(uid));
    if (this.create(file)) return true;
    const seen = this.read(file);
    if (seen === undefined) return this.create(file);
    if (alive(seen)) return false;
    const lock = `${file}.lock`;
    if (!this.lock(lock)) return false;
    try {
      if (this.read(file) !== seen) return false;
      unlinkSync(file);
      return this.create(file);
    } finally {
      rmdirSync(lock);
    }
  }

  /** Gives `uid` back (only a claim of this daemon is removed). */
  release(uid: number): void {
    const file = join(this.dir, String(uid));
    if (this.read(file) === this.mine) unlinkSync(file);
  }

  private create(file: string): boolean {
    try {
      writeFileSync(file, this.mine, { flag: "wx", mode: 0o644 });
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
