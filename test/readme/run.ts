// Runs README commands the way a reader's shell does: `bash -c LINE` from the repository root,
// each in its own process group (so a Ctrl-C can be sent to the whole foreground job, as a
// terminal does), with the caller's env — which carries the test's leak tag — on top of ours.
import { setTimeout as sleep } from "node:timers/promises";
import { type Captured, type Exit, type Finished, spawnCaptured } from "../helpers/captured.ts";
import { REPO_ROOT } from "../helpers/daemon.ts";

export interface Job extends Captured {
  /** Signals the job's whole process group, like a terminal's Ctrl-C (SIGINT). */
  signal(sig: NodeJS.Signals): void;
}

/** Starts `bash -c line` in the repository root; the caller must see it exit (or kill it). */
export function launch(line: string, env: Record<string, string>, cwd = REPO_ROOT): Job {
  const job = spawnCaptured("bash", ["-c", line], { env, cwd, detached: true });
  return {
    ...job,
    signal: (sig) => {
      try {
        process.kill(-job.child.pid!, sig);
      } catch {
        // the group is already gone
      }
    },
  };
}

/** Runs `bash -c line` to completion; SIGKILLs its group after timeoutMs and says so. */
export async function sh(
  line: string,
  env: Record<string, string>,
  { cwd = REPO_ROOT, timeoutMs = 20_000 } = {},
): Promise<Finished> {
  const job = launch(line, env, cwd);
  let late = false;
  const timer = setTimeout(() => {
    late = true;
    job.signal("SIGKILL");
  }, timeoutMs);
  const exit = await job.exited;
  clearTimeout(timer);
  const result = { ...exit, stdout: job.stdout(), stderr: job.stderr() };
  if (late) {
    throw new Error(`\`${line}\` did not finish within ${timeoutMs} ms: ${JSON.stringify(result)}`);
  }
  return result;
}

/** Ctrl-C: SIGINT to the job's group; SIGKILL if it has not exited within graceMs. */
export async function interrupt(job: Job, graceMs = 10_000): Promise<Exit> {
  job.signal("SIGINT");
  const timer = setTimeout(() => job.signal("SIGKILL"), graceMs);
  const exit = await job.exited;
  clearTimeout(timer);
  return exit;
}

/** Polls check() until it returns a value other than undefined, or throws saying what. */
export async function waitFor<T>(
  what: string,
  check: () => T | undefined | Promise<T | undefined>,
  ms = 10_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(25);
  }
}
