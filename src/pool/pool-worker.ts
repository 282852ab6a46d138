// The seam between a Pool and its workers: what the pool reads of a worker and asks of it.
// worker.ts's Worker (a real process tree) is the one implementation the daemon uses; specs
// hand a Pool fakes through PoolDeps.workers (test/helpers/fake-worker.ts), so the pool's queue, singleflight
// and session rules are tested in milliseconds, without processes.
//
// State: one tagged union, starting → ready → stopping → stopped, moved by the worker alone
// (ready when it serves, stopped when its start failed, stopping → stopped when the pool asks it
// to stop). What the pool makes of a ready worker (idle, busy with a session, cleaning up after
// one) is the pool's own (pool-workers.ts): the pool writes nothing into a worker.

import type { Readable } from "node:stream";
import type { WorkerBoot, WorkerExit } from "../core/index.ts";
import type { WorkerCgroupRecord } from "./cgroups.ts";
import type { OutputRing } from "./output-ring.ts";
import type { SandboxRecord } from "./worker-sandbox.ts";

/** What a successor daemon needs to own a ready worker (restart). */
export interface HandedWorker {
  id: string;
  port: number;
  /** Where the data plane reaches it (a contained worker: its relay socket). */
  address: string;
  pid: number;
  /** The root's start time (proc-stat.ts): with the pid, it names one process. */
  startTime: number;
  startedAt: number;
  readyAt: number;
  /** The tree's own processes when it became ready (clean-reuse.ts). */
  own: number[];
  cgroup: WorkerCgroupRecord | undefined;
  /** Its sandbox's state (worker-sandbox.ts), when it is contained. */
  sandbox?: SandboxRecord;
}

/** A handed-over worker and its output streams, which the predecessor no longer reads. */
export interface WorkerHandOff {
  worker: HandedWorker;
  stdout: Readable | null;
  stderr: Readable | null;
}

export type WorkerState =
  | { kind: "starting" }
  | { kind: "ready" }
  | { kind: "stopping" }
  | { kind: "stopped" };

export interface WorkerHooks {
  /** The tree exited or failed a check while the pool still counted on it. Called at most once. */
  onFailure(worker: PoolWorker, reason: string, exit?: WorkerExit): void;
}

export interface PoolWorker {
  readonly id: string;
  /** 0 until started. */
  readonly pid: number;
  readonly port: number;
  /** How the data plane reaches it (core's worker address format). */
  readonly address: string;
  readonly state: WorkerState;
  /** When the worker became ready (0: not yet); a crash soon after counts toward backoff. */
  readonly readyAt: number;
  /** Its start's phases once it is ready (absent for workers with no process, e.g. fakes). */
  readonly boot?: WorkerBoot;
  /** Its stdout and stderr, bounded (absent for workers with no process, e.g. fakes). */
  readonly output?: OutputRing;
  /** What its tree has used: figures the host cannot give are undefined. */
  resources?(): { cpuSeconds?: number; memoryPeakBytes?: number };
  /** resources()'s CPU figure alone (one file read instead of two): a session's baseline. */
  cpuSeconds?(): number | undefined;
  /** Starts its memory peak afresh for a new session, where the host allows. */
  resetMemoryPeak?(): void;
  /** A prepared, not yet started worker whose tree still waits (see prepare). */
  readonly preparedAlive: boolean;
  /** The slow, traffic-independent half of a start (a pool keeps one prepared spare). */
  prepare(): Promise<void>;
  /** Ends a prepared worker that will never start. */
  discardPrepared(): Promise<void>;
  /** Resolves once the worker serves (state ready); rejects with HerdError saying why not. */
  start(signal: AbortSignal): Promise<void>;
  /** Kills what the last session left behind; resolves with the pids killed. */
  killStrays(): Promise<number[]>;
  /** Ends the worker (SIGTERM, `graceMs`, SIGKILL); resolves when nothing of it is left. */
  stop(graceMs: number): Promise<WorkerExit | undefined>;
  /** Synchronous last resort, when the daemon is exiting right now. */
  killNow(): void;
  /** Gives a ready tree up to a successor daemon untouched (restart; real workers only). */
  handOff?(): WorkerHandOff;
  /** CPU time the tree has used (µs), for idle_cpu; undefined when it cannot be read. */
  cpuUsageUs?(): number | undefined;
}

/** Makes a pool's next worker; `id` is unique in the daemon. */
export type WorkerFactory = (id: string, hooks: WorkerHooks) => PoolWorker;
