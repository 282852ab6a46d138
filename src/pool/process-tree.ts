// One worker's OS process tree: how it is started so that it can always be ended, and ending it.
//
// The spawned argv is a short exec chain, each link adding one guarantee:
//   setpriv --pdeathsig KILL --            root dies when the daemon dies (even by SIGKILL)
//   sh -c 'join cgroups; exec "$@"'        every descendant is inside the worker's cgroups
//   unshare --pid --fork --kill-child --   a PID namespace: its init dying kills all members
//                                          (only where asked for, or where no cgroup.kill exists:
//                                          inside it the worker is PID 1, which ignores signals it
//                                          has no handler for)
//   <sandbox wrapper>                      uid, namespaces, mounts (worker-sandbox.ts); it brings
//                                          its own PID namespace and holds the gate itself
//   <command>
// and the root is started with setsid (detached), so the tree has its own process group.
// Links are dropped where the host lacks them (see host-capabilities.ts).
//
// pdeathsig follows the *thread* that spawned the child; Node spawns from the main thread, which
// lives as long as the daemon, so the signal fires exactly when the daemon dies.
//
// A tree that must outlive its daemon for a restart (`dieWith: "lifeline"`, restart.ts in
// src/cli) has no pdeathsig: it dies with its generation's lifeline instead (reaper.ts: the
// daemon-wide cgroup.kill once no daemon holds the reaper's pipe), which only a host with
// cgroup v2 `cgroup.kill` offers. Such a tree can be handed to a successor daemon, which adopts
// it by pid (`ProcessTree.adopt`): not its parent, it cannot wait() for it, so it watches the
// pid (with its start time, against reuse) and learns no exit code.
//
// Ending: SIGTERM to the group and every cgroup member, up to `graceMs` for the root to exit,
// then SIGKILL to everything (cgroup.kill, the group, the namespace's init), and `end()` resolves
// only once no process of the tree remains.

import { type ChildProcess, spawn } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import type { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { HerdError } from "../core/index.ts";
import type { WorkerCgroup } from "./cgroups.ts";
import type { HostCapabilities } from "./host-capabilities.ts";
import { treePids } from "./listener-owner.ts";
import { processRuns, procStat } from "./proc-stat.ts";

// Joins every cgroup, then (gated) waits for the go (a line, or EOF, on stdin) before exec'ing.
const JOIN =
  'IFS=:; for f in $HERD_CGROUP_PROCS; do echo $$ > "$f" || exit 125; done; unset IFS HERD_CGROUP_PROCS;';
const JOIN_CGROUPS = `${JOIN} read -r _ || :; exec "$@" </dev/null`;
const JOIN_CGROUPS_UNGATED = `${JOIN} exec "$@"`;

export interface TreeExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface TreeSpec {
  command: readonly string[];
  env: Record<string, string>;
  cwd?: string;
  pidNamespace: boolean;
  cgroup?: WorkerCgroup;
  caps: HostCapabilities;
  /** Hold the command until `open()` (the cgroup join happens before). */
  gated?: boolean;
  /** Wraps the command (see worker-sandbox.ts); it holds the gate when there is one. */
  sandbox?: { wrapper: readonly string[] };
  /**
   * What ends the tree when the daemon dies: pdeathsig (the default), or the generation's
   * lifeline (reaper.ts) alone, so that a restart can hand the tree to a successor.
   */
  dieWith?: "daemon" | "lifeline";
}

/** What a successor needs to own a handed-over tree (restart). */
export interface AdoptedTreeSpec {
  pid: number;
  /** The root's start time (proc-stat.ts): with the pid, it names one process. */
  startTime: number;
  stdout: Readable | null;
  stderr: Readable | null;
}

/** How often an adopted tree's root is checked: a successor is not its parent, so no SIGCHLD. */
const ADOPTED_POLL_MS = 100;

/** Resolves a program like execvp would, so a typo fails with a clear message before spawning. */
export function resolveProgram(program: string, cwd: string, pathEnv: string): string {
  const candidates = program.includes("/")
    ? [isAbsolute(program) ? program : resolve(cwd, program)]
    : pathEnv.split(":").map((dir) => join(dir || ".", program));
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {}
  }
  throw new HerdError(
    "unavailable",
    `worker command not found or not executable: ${JSON.stringify(program)} (cwd ${cwd}, PATH ${pathEnv})`,
  );
}

export class ProcessTree {
  /** The spawned root; undefined for a tree adopted from a predecessor daemon. */
  readonly child: ChildProcess | undefined;
  readonly stdout: Readable | null;
  readonly stderr: Readable | null;
  readonly pid: number;
  /** Resolves when the root process exits (the tree may still have members). */
  readonly exited: Promise<TreeExit>;
  private exitInfo: TreeExit | undefined;
  private ending: Promise<void> | undefined;
  private opened = false;

  constructor(
    private readonly spec: TreeSpec,
    adopted?: AdoptedTreeSpec,
  ) {
    if (adopted) {
      this.child = undefined;
      this.pid = adopted.pid;
      this.stdout = adopted.stdout;
      this.stderr = adopted.stderr;
      this.opened = true;
      this.exited = watchAdopted(adopted).then((exit) => {
        this.exitInfo = exit;
        return exit;
      });
      return;
    }
    const { caps, cgroup } = spec;
    const cwd = spec.cwd ?? process.cwd();
    const program = resolveProgram(spec.command[0]!, cwd, spec.env.PATH ?? "/usr/bin:/bin");
    const argv: string[] = [];
    const env = { ...spec.env };
    const { sandbox } = spec;
    const joins = cgroup !== undefined && cgroup.procsFiles.length > 0;
    // The sandbox wrapper or the cgroup-joining shell holds a gated command back; the wrapper
    // does it last, after its namespaces are made, so the spare absorbs that cost too.
    const gate = spec.gated === true && (sandbox !== undefined || joins);
    if (caps.setpriv && spec.dieWith !== "lifeline") {
      argv.push(caps.setpriv, "--pdeathsig", "KILL", "--");
    }
    if (joins) {
      const held = gate && sandbox === undefined;
      argv.push("/bin/sh", "-c", held ? JOIN_CGROUPS : JOIN_CGROUPS_UNGATED, "herd-join");
      env.HERD_CGROUP_PROCS = cgroup.procsFiles.join(":");
    }
    // Without cgroup.kill, a PID namespace is what still reaches setsid'd grandchildren.
    const pidNamespace = spec.pidNamespace || !cgroup?.canKill;
    if (sandbox) {
      argv.push(...sandbox.wrapper);
    } else if (pidNamespace && caps.pidNamespace && caps.unshare) {
      argv.push(caps.unshare, "--pid", "--fork", "--kill-child", "--");
    }
    // A sandboxed worker may run under another uid, for which the daemon's first PATH match
    // can be out of reach (e.g. a shim under /root): its own exec searches PATH as that uid.
    argv.push(sandbox ? spec.command[0]! : program, ...spec.command.slice(1));
    this.child = spawn(argv[0]!, argv.slice(1), {
      cwd,
      env,
      detached: true,
      stdio: [gate ? "pipe" : "ignore", "pipe", "pipe"],
    });
    if (!gate) this.opened = true;
    if (this.child.pid === undefined) {
      throw new HerdError("unavailable", `could not start ${JSON.stringify(spec.command[0])}`);
    }
    this.pid = this.child.pid;
    this.stdout = this.child.stdout;
    this.stderr = this.child.stderr;
    const child = this.child;
    this.exited = new Promise((resolveExit) => {
      child.once("exit", (code, signal) => {
        this.exitInfo = { code, signal };
        resolveExit(this.exitInfo);
      });
    });
    // spawn errors after a pid exists surface as 'exit' too; keep the process alive on 'error'.
    this.child.on("error", () => {});
  }

  /** Every live process of the tree: the cgroup's members, else the root and its descendants. */
  members(): number[] {
    const pids = this.spec.cgroup?.pids() ?? [];
    return pids.length > 0 ? pids : treePids(this.pid);
  }

  /** Lets a gated tree exec its command. Idempotent. */
  open(): void {
    if (this.opened) return;
    this.opened = true;
    this.child?.stdin?.on("error", () => {});
    this.child?.stdin?.end("\n");
  }

  get exit(): TreeExit | undefined {
    return this.exitInfo;
  }

  /** Ends the whole tree; concurrent calls share one ending. */
  end(graceMs: number): Promise<void> {
    this.ending ??= this.runEnd(graceMs);
    return this.ending;
  }

  private signalAll(signal: NodeJS.Signals): void {
    // A sandbox's root (bwrap) dies of SIGTERM and its namespace's init follows with SIGKILL
    // for everyone (die-with-parent): the grace is the worker's, so SIGTERM skips the root and
    // goes to every other member; the tree then ends when the worker does.
    const spareRoot = signal === "SIGTERM" && this.spec.sandbox !== undefined;
    const targets = new Set<number>(spareRoot ? this.members() : (this.spec.cgroup?.pids() ?? []));
    if (spareRoot) {
      targets.delete(this.pid);
    } else {
      try {
        process.kill(-this.pid, signal);
      } catch {}
    }
    for (const pid of targets) {
      try {
        process.kill(pid, signal);
      } catch {}
    }
  }

  private async runEnd(graceMs: number): Promise<void> {
    if (graceMs > 0 && !this.exitInfo) {
      this.signalAll("SIGTERM");
      // The grace timer must not outlive an early exit: it would hold the daemon's event loop.
      const grace = new AbortController();
      await Promise.race([
        this.exited,
        sleep(graceMs, undefined, { signal: grace.signal }).catch(() => {}),
      ]);
      grace.abort();
    }
    this.killNow();
    await this.gone();
  }

  /** SIGKILL to every member, by every means available. Synchronous; safe to repeat. */
  killNow(): void {
    this.spec.cgroup?.kill();
    this.signalAll("SIGKILL");
    try {
      if (this.child) this.child.kill("SIGKILL");
      else if (!this.exitInfo) process.kill(this.pid, "SIGKILL");
    } catch {}
  }

  /**
   * What a successor daemon needs to own the tree (restart): the root's identity, and the
   * output this daemon stops reading.
   */
  handOff(): AdoptedTreeSpec {
    const startTime = procStat(this.pid)?.startTime ?? 0;
    return { pid: this.pid, startTime, stdout: this.stdout, stderr: this.stderr };
  }

  /**
   * Resolves once no process of the tree runs. Zombies count as gone: setsid grandchildren are
   * reaped by the host's init, which can take tens of milliseconds after they died.
   */
  private async gone(): Promise<void> {
    await this.exited;
    const cgroup = this.spec.cgroup;
    if (!cgroup) return;
    // Members of a dying namespace or cgroup linger for microseconds to milliseconds.
    for (let waited = 0; cgroup.pids().some(processRuns) && waited < 5_000; waited++) {
      if (waited % 50 === 49) this.killNow();
      await (waited < 20 ? new Promise((r) => setImmediate(r)) : sleep(1));
    }
  }
}

/** Resolves when the adopted root is gone (or a zombie, or its pid names another process). */
function watchAdopted({ pid, startTime }: AdoptedTreeSpec): Promise<TreeExit> {
  return new Promise((resolveExit) => {
    const check = () => {
      const stat = procStat(pid);
      if (stat === undefined || stat.startTime !== startTime || stat.state === "Z") {
        clearInterval(timer);
        resolveExit({ code: null, signal: null });
      }
    };
    const timer = setInterval(check, ADOPTED_POLL_MS);
    timer.unref();
    check();
  });
}
