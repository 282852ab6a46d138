// The seam between the pool and whatever contains a worker beyond its process tree (uids,
// namespaces, mounts). The pool knows only this interface; the launcher lives in src/sandbox and
// is wired in by whoever builds the Herd (src/cli/serve.ts), so src/pool never imports it.
//
// Contract for an implementation:
//   - the factory runs once per pool at start, resolves the pool's `default` isolation keys to
//     what the host gives, and returns what the workers get (one ContainmentRow per key) and
//     the PoolSandbox, unless they get nothing beyond the process tree; it throws
//     HerdError("failed_precondition") naming the config key when the host cannot give what the
//     pool explicitly asks for: a pool never runs less contained than configured;
//   - `launch` runs at prepare time (before the gate), so its cost is absorbed by the spare;
//   - the wrapper argv it returns must hold the command until a line (or EOF) arrives on stdin,
//     then exec the command given after it, inside a PID namespace of its own (the tree then
//     needs no `unshare --pid`);
//   - `release` is called exactly once, after the worker's tree is gone (or was never spawned),
//     and frees what the launch held (a uid, directories);
//   - restart: a launch given a `lifeline` must not die with the daemon (its generation's
//     cgroup.kill ends it, and whatever it holds host-wide names that process, not the daemon);
//     `handOff` gives its state as plain data, which the successor's PoolSandbox `adopt`s (its
//     own `release` then frees it).

import type { ContainmentRow, PoolOptions, WorkerEndpoint } from "../core/index.ts";

export interface SandboxLaunch {
  /** Run after the cgroup join; ends with the argv separator, the command follows it. */
  readonly wrapper: readonly string[];
  /** Environment entries set for the worker (e.g. its private HOME). */
  readonly env: Readonly<Record<string, string>>;
  /** Where the daemon connects; undefined: 127.0.0.1 and the worker's port. */
  readonly endpoint?: WorkerEndpoint;
  /**
   * The worker lives in a network namespace of its own: no other program can hold its port, so
   * the /proc/net/tcp listener-owner check is moot (and could not see that namespace anyway).
   */
  readonly privateNetwork: boolean;
  release(): void;
  /** Its state for a successor daemon (restart); from then on `release` frees nothing. */
  handOff(): SandboxRecord;
}

/** A launch's state as plain data (src/sandbox reads it; the pool only carries it). */
export type SandboxRecord = Readonly<Record<string, string | number>>;

/** The process whose death ends a restartable worker's tree: its generation's reaper. */
export interface SandboxLifeline {
  pid: number;
  startTime: number;
}

export interface PoolSandbox {
  launch(worker: { id: string; port: number; lifeline?: SandboxLifeline }): SandboxLaunch;
  /** Owns a launch a predecessor daemon handed over (restart). */
  adopt(record: SandboxRecord): SandboxLaunch;
  /** The pool is closed and every worker released: remove what is left. */
  close(): void;
}

/** `sandbox` is absent when the workers get nothing beyond the process tree. */
export type SandboxFactory = (options: PoolOptions) => {
  sandbox?: PoolSandbox;
  containment: ContainmentRow[];
};
