// A reused worker comes back clean: before it serves another session, every process its last
// session left in its tree is killed — a browser it launched, a shell, a fork bomb's children.
//
// Invariant: a worker's own processes are the members its tree had when it became ready (the
// wrappers herd adds, `npx` and the server it starts: the main process is not always the root);
// anything that joined the tree after that belongs to a session. The pool awaits killStrays
// before the worker goes back to idle, so no session ever sees another's processes. Membership
// comes from the worker's cgroup where there is one (exact: a double-forked, setsid'd
// grandchild is still a member); without cgroups it is the root's descendants, which misses
// processes reparented away from the tree (the daemon says at start that this guarantee is off).
//
// What this cannot reset is the main process's own state (memory, open files, its temp
// directory, listening sockets it opened): a reusing worker must reset those itself, or use
// `reuse: false` (see docs/configuration.md, `reuse`).

import { setTimeout as sleep } from "node:timers/promises";
import { HerdError } from "../core/index.ts";
import { processRuns } from "./proc-stat.ts";

/** Gives up (the pool then kills the whole worker) when strays outlive this. */
const STRAYS_DEADLINE_MS = 5_000;

/**
 * SIGKILLs every live member not in `own`, again and again (a fork bomb forks while it dies),
 * until none is left. Resolves with the pids killed; rejects with HerdError("unavailable") if
 * some still run after STRAYS_DEADLINE_MS.
 */
export async function killStrays(
  members: () => number[],
  own: ReadonlySet<number>,
): Promise<number[]> {
  const killed = new Set<number>();
  const started = Date.now();
  for (let round = 0; ; round++) {
    const strays = members().filter((pid) => !own.has(pid) && processRuns(pid));
    if (strays.length === 0) return [...killed];
    if (Date.now() - started > STRAYS_DEADLINE_MS) {
      throw new HerdError(
        "unavailable",
        `${strays.length} processes left by the last session would not die (pids ${strays.slice(0, 5).join(", ")})`,
      );
    }
    for (const pid of strays) {
      try {
        process.kill(pid, "SIGKILL");
        killed.add(pid);
      } catch {}
    }
    // Killed processes leave the member list within microseconds to milliseconds.
    await (round < 20 ? new Promise((r) => setImmediate(r)) : sleep(1));
  }
}
