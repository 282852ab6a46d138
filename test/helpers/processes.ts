// Process-leak tracking for tests, by environment tag.
//
// Invariant: a test gives every process it starts (directly or through herd) the env var
// HERD_LEAK_TAG=<tag>; children inherit it, so every descendant — including grandchildren
// that double-fork or call setsid and so leave the process group — still carries it in
// /proc/PID/environ. Scanning /proc for the tag therefore finds every survivor no matter how
// it detached. herd gives its workers a clean environment, so the tag reaches them only by
// name: the harnesses put it in each pool's `env` or `env_passthrough`, and
// leak-tag-reach.spec.ts proves a worker carries it (else every leak check would pass
// vacuously). Stateless: each call re-reads /proc; safe to call concurrently.
import { randomUUID } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { type ProcStat, processRuns, procStat } from "../../src/pool/index.ts";

export { type ProcStat, procStat };

export const LEAK_TAG_VAR = "HERD_LEAK_TAG";

export interface LeakTag {
  tag: string;
  /** Merge into the env of every process the test starts. */
  env: { HERD_LEAK_TAG: string };
}

export function newLeakTag(): LeakTag {
  const tag = randomUUID();
  return { tag, env: { [LEAK_TAG_VAR]: tag } as { HERD_LEAK_TAG: string } };
}

function numericDirs(): number[] {
  const pids: number[] = [];
  for (const name of readdirSync("/proc")) {
    const pid = Number(name);
    if (Number.isInteger(pid) && pid > 0) pids.push(pid);
  }
  return pids;
}

/**
 * The top-level herd cgroup (v2) a process is in: `herd-<pidns>-<pid>-<start>` of its
 * generation's reaper (src/pool/reaper.ts); "" outside one.
 */
export function generationOf(pid: number): string {
  let text = "";
  try {
    text = readFileSync(`/proc/${pid}/cgroup`, "utf8");
  } catch {}
  const v2 = text.split("\n").find((l) => l.startsWith("0::"));
  return v2?.split("/").find((segment) => segment.startsWith("herd-")) ?? "";
}

/** Live (not zombie, not exited) process? The same test herd applies to a worker's tree. */
export const pidAlive = processRuns;

export function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean).join(" ");
  } catch {
    return "<gone>";
  }
}

/**
 * The host pids of the tagged processes running `script` itself (argv[1]; not the wrappers
 * around it, whose argv also names it): a contained worker's own pid is renumbered by its PID
 * namespace, so tests find it here.
 */
export function pidsRunning(tag: string, script: string): number[] {
  return pidsWithTag(tag).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[1] === script;
    } catch {
      return false;
    }
  });
}

/** Live processes whose initial environment carries HERD_LEAK_TAG=<tag>. */
export function pidsWithTag(tag: string): number[] {
  const needle = Buffer.from(`${LEAK_TAG_VAR}=${tag}\0`);
  const found: number[] = [];
  for (const pid of numericDirs()) {
    if (pid === process.pid) continue;
    let environ: Buffer;
    try {
      environ = readFileSync(`/proc/${pid}/environ`);
    } catch {
      continue; // vanished, or a kernel thread / foreign process we may not read
    }
    // The var may be the first entry (no leading NUL) or any later one.
    const at = environ.indexOf(needle);
    if (at < 0) continue;
    if (at > 0 && environ[at - 1] !== 0) continue;
    if (pidAlive(pid)) found.push(pid);
  }
  return found;
}

/** All live descendants of pid (children, grandchildren, ...) by walking ppid links. */
export function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const p of numericDirs()) {
    const st = procStat(p);
    if (!st) continue;
    const list = children.get(st.ppid);
    if (list) list.push(p);
    else children.set(st.ppid, [p]);
  }
  const out: number[] = [];
  const stack = [...(children.get(pid) ?? [])];
  while (stack.length > 0) {
    const p = stack.pop()!;
    if (pidAlive(p)) out.push(p);
    stack.push(...(children.get(p) ?? []));
  }
  return out;
}

/** Polls until every pid is gone (or a zombie); returns those still alive after ms. */
export async function waitForPidsGone(pids: number[], ms: number): Promise<number[]> {
  const deadline = Date.now() + ms;
  let alive = pids.filter(pidAlive);
  while (alive.length > 0 && Date.now() < deadline) {
    await sleep(10);
    alive = alive.filter(pidAlive);
  }
  return alive;
}

/** Polls until no live process carries the tag, each check costs one /proc scan. */
export async function waitForTagGone(tag: string, ms: number): Promise<number[]> {
  const deadline = Date.now() + ms;
  let left = pidsWithTag(tag);
  while (left.length > 0 && Date.now() < deadline) {
    await sleep(25);
    left = pidsWithTag(tag);
  }
  return left;
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    // already gone
  }
}

/**
 * Asserts that every process carrying the tag is gone within `withinMs`. Survivors are
 * described (pid, state, cmdline), then SIGKILLed so one failing test does not poison the
 * next, and the error is thrown.
 */
export async function expectNoLeaks(tag: string, opts: { withinMs?: number } = {}): Promise<void> {
  const left = await waitForTagGone(tag, opts.withinMs ?? 5000);
  if (left.length === 0) return;
  const described = left.map((pid) => {
    const st = procStat(pid);
    return `  pid ${pid} (ppid ${st?.ppid ?? "?"}, sid ${st?.sid ?? "?"}): ${cmdline(pid)}`;
  });
  killAllWithTag(tag);
  throw new Error(
    `${left.length} process(es) leaked with ${LEAK_TAG_VAR}=${tag} (now SIGKILLed):\n${described.join("\n")}`,
  );
}

/**
 * SIGKILLs every live process carrying the tag (cleanup in afterEach on failure paths).
 * Repeats a few rounds because a process may fork between the scan and the kill.
 */
export function killAllWithTag(tag: string): number[] {
  const killed = new Set<number>();
  for (let round = 0; round < 5; round++) {
    const pids = pidsWithTag(tag).filter((pid) => !killed.has(pid));
    if (pids.length === 0) break;
    for (const pid of pids) {
      killQuietly(pid);
      killed.add(pid);
    }
  }
  return [...killed];
}
