// The daemon's runtime directory: every pool's sandbox directories and the control plane's Unix
// socket live in it. Every generation's runtime directory (each daemon's, and a restarted one's
// successors') lives under one parent, `/run/herd-sandbox` (root) or `<temp dir>/herd-sandbox-u<uid>`
// (not root), and every sandboxed worker sees an empty tmpfs in the parent's place: no worker
// reaches another pool's relay sockets or the control socket, whatever its uid (a worker of the
// daemon's own uid included), nor those of a daemon that takes over after it was launched
// (a restart's successor makes its directory under the same parent, which the worker's mount
// namespace hides whatever appears in it later).
//
// Invariant: one directory per process at a time, `<parent>/<pid>-XXXXXX`, mode 0711 (a worker
// may pass through to its own directory, never list it), in a parent owned by this uid that no
// one else may write (mode 0711); it exists while anyone holds it (`acquire` .. `release`) and is
// removed when the last holder lets go. A directory named after a daemon pid that no longer runs
// is removed when the next one is made (SIGKILL leaves them; their workers died with the daemon),
// unless a worker's `<dir>/<pool>/<worker>.lifeline` names a process that still lives: a
// restartable worker outlives its daemon while its generation's reaper lives (a successor is
// adopting it, and moves its directory into its own). Directories of older herd versions
// (`<base>/herd-sandbox-<pid>-XXXXXX`) are swept the same way. Single-threaded.

import {
  chmodSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { alive } from "./uid-claims.ts";

const PREFIX = "herd-sandbox-";

let dir: string | undefined;
let holders = 0;

function base(): string {
  return (process.getuid?.() ?? 0) === 0 ? "/run" : tmpdir();
}

/** Where every generation's runtime directory lives: what every worker's namespace hides. */
export function runtimeParent(): string {
  const uid = process.getuid?.() ?? 0;
  return uid === 0 ? "/run/herd-sandbox" : join(tmpdir(), `herd-sandbox-u${uid}`);
}

export function acquireRuntimeDir(): string {
  holders++;
  if (dir) return dir;
  const parent = ownParent();
  removeOrphans(base(), PREFIX);
  removeOrphans(parent, "");
  dir = mkdtempSync(join(parent, `${process.pid}-`));
  chmodSync(dir, 0o711);
  return dir;
}

export function releaseRuntimeDir(): void {
  if (holders === 0) return;
  holders--;
  if (holders > 0 || !dir) return;
  rmSync(dir, { recursive: true, force: true });
  dir = undefined;
}

/** The parent, made if missing; refused if someone else could have put anything in it. */
function ownParent(): string {
  const parent = runtimeParent();
  try {
    mkdirSync(parent, { mode: 0o711 });
    chmodSync(parent, 0o711); // whatever the umask: a client of another uid follows the socket's symlink
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
  }
  const stat = lstatSync(parent);
  const uid = process.getuid?.() ?? 0;
  if (!stat.isDirectory() || stat.uid !== uid || (stat.mode & 0o022) !== 0) {
    throw new Error(
      `${parent}: herd's runtime directory must be a directory of uid ${uid} that no one else may write (it is ${stat.isDirectory() ? `uid ${stat.uid}'s, mode ${(stat.mode & 0o777).toString(8)}` : "not a directory"}); remove it`,
    );
  }
  return parent;
}

function removeOrphans(where: string, prefix: string): void {
  let names: string[] = [];
  try {
    names = readdirSync(where).filter((n) => n.startsWith(prefix));
  } catch {}
  for (const name of names) {
    const pid = Number(name.slice(prefix.length).split("-")[0]);
    if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) continue;
    try {
      process.kill(pid, 0);
      continue; // that daemon still runs
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ESRCH") continue;
    }
    if (holdsLiveWorkers(join(where, name))) continue;
    rmSync(join(where, name), { recursive: true, force: true });
  }
}

/** Does a worker of this runtime directory still live (its lifeline's process runs)? */
function holdsLiveWorkers(dir: string): boolean {
  let files: string[] = [];
  try {
    files = (readdirSync(dir, { recursive: true }) as string[]).filter((f) =>
      f.endsWith(".lifeline"),
    );
  } catch {}
  return files.some((f) => {
    try {
      return alive(readFileSync(join(dir, f), "utf8"));
    } catch {
      return false;
    }
  });
}
