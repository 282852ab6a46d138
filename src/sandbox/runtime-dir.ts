// The daemon's runtime directory: every pool's sandbox directories and the control plane's Unix
// socket live in it, and every sandboxed worker sees an empty tmpfs in its place, so no worker
// reaches another pool's relay sockets or the control socket, whatever its uid (a worker of the
// daemon's own uid included).
//
// Invariant: one directory per process at a time, `/run/herd-sandbox-<pid>-XXXXXX` (root) or
// under the temp dir (non-root), mode 0711 (a worker may pass through to its own directory,
// never list it); it exists while anyone holds it (`acquire` .. `release`) and is removed when
// the last holder lets go. A directory named after a daemon pid that no longer runs is removed
// when the next one is made (SIGKILL leaves them; their workers died with the daemon), unless
// a worker's `<dir>/<pool>/<worker>.lifeline` names a process that still lives: a restartable
// worker outlives its daemon while its generation's reaper lives (a successor is adopting it,
// and moves its directory into its own). Single-threaded.

import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { alive } from "./uid-claims.ts";

const PREFIX = "herd-sandbox-";

let dir: string | undefined;
let holders = 0;

export function acquireRuntimeDir(): string {
  holders++;
  if (dir) return dir;
  const base = (process.getuid?.() ?? 0) === 0 ? "/run" : tmpdir();
  removeOrphans(base);
  dir = mkdtempSync(join(base, `${PREFIX}${process.pid}-`));
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
    if (holdsLiveWorkers(join(base, name))) continue;
    rmSync(join(base, name), { recursive: true, force: true });
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
