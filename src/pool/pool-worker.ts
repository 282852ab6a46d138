// The seam between a Pool and its workers: what the pool reads of a worker and asks of it.
// worker.ts's Worker (a real process tree) is the one implementation the daemon uses; specs
// hand a Pool fakes through PoolDeps.workers (pool.spec.ts), so the pool's queue, singleflight
// and session rules are tested in milliseconds, without processes.
//
// State: one tagged union, starting → idle ⇄ busy → stopping → stopped, each state carrying
// its own data (an idle worker's retirement timer, a busy worker's session). The worker moves
// itself out of starting (idle when ready, stopped when its start failed) and through
// stopping → stopped; the owning Pool moves it between idle and busy.

import type { WorkerExit } from "../core/index.ts";

export type WorkerState =
  | { kind: "starting" }
  /** `retireTimer`: set while the pool has more than `min` workers (idle_worker_ttl). */
  | { kind: "idle"; retireTimer: NodeJS.Timeout | undefined }
  /** `sessionId` undefined: its session ended, what it left is being killed (clean reuse). */
  | { kind: "busy"; sessionId: string | undefined }
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
  state: WorkerState;
  /** When the worker became ready (0: not yet); a crash soon after counts toward backoff. */
  readonly readyAt: number;
  /** Set by the pool when this worker's crash started a backoff; quoted when it stops. */
  crashNote: string | undefined;
  /** A prepared, not yet started worker whose tree still waits (see prepare). */
  readonly preparedAlive: boolean;
  /** The slow, traffic-independent half of a start (a pool keeps one prepared spare). */
  prepare(): Promise<void>;
  /** Ends a prepared worker that will never start. */
  discardPrepared(): Promise<void>;
  /** Resolves once the worker serves (state idle); rejects with HerdError saying why not. */
  start(signal: AbortSignal): Promise<void>;
  /** Kills what the last session left behind; resolves with the pids killed. */
  killStrays(): Promise<number[]>;
  /** Ends the worker (SIGTERM, `graceMs`, SIGKILL); resolves when nothing of it is left. */
  stop(graceMs: number): Promise<WorkerExit | undefined>;
  /** Synchronous last resort, when the daemon is exiting right now. */
  killNow(): void;
  /** CPU time the tree has used (µs), for idle_cpu; undefined when it cannot be read. */
  cpuUsageUs?(): number | undefined;
}

/** Makes a pool's next worker; `id` is unique in the daemon. */
export type WorkerFactory = (id: string, hooks: WorkerHooks) => PoolWorker;
