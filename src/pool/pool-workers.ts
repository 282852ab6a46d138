// A pool's workers: which it counts, what each is doing for it, and how they start, go idle,
// retire and are replaced, with the crash-loop backoff over its automatic starts. The Pool
// decides what a worker is for (which session, reuse or retire); this keeps the workers.
//
// Invariants:
//   - what the pool makes of a worker is one tagged union per worker (Slot): starting → idle
//     (with its retirement timer) ⇄ busy (with its session) → cleaning (the session ended and
//     what it left is being killed, clean-reuse.ts) → idle. A worker without a slot no longer
//     counts: its tree is stopping or gone, or it never started. A worker's own state
//     (pool-worker.ts) is the worker's; the pool writes nothing into a worker;
//   - `idle` holds exactly the workers whose slot is idle, most recently used last (but the one
//     `popIdle` just handed out, which its caller binds in the same tick);
//   - the slots never number more than max, starting workers included; a worker being torn
//     down no longer counts, so a new acquire can start a worker while it dies. The automatic
//     replacement (keeping min warm, serving the queue) waits until its tree is gone, or has had
//     REPLACE_AFTER_MS to go: a worker booting beside a dying tree slows the reaping (tree gone
//     p50 5 -> 13 ms here);
//   - an idle worker's retirement timer runs only while the pool has more than min workers, and
//     stops when the worker leaves idle.
//
// Concurrency: single-threaded. Slots change synchronously; the only awaits are a worker's start,
// its stop and the kill of what a session left, after which the slot is re-read, not assumed.

import type { HerdEventType, PoolOptions, WorkerExit } from "../core/index.ts";
import { HerdError } from "../core/index.ts";
import { DemandShaper } from "./demand-shaper.ts";
import type { EventLog } from "./event-log.ts";
import type { PoolWorker } from "./pool-worker.ts";
import { type BackoffState, RestartBackoff } from "./restart-backoff.ts";
import { type SupplyDeps, WorkerSupply } from "./worker-supply.ts";

type Slot =
  | { kind: "starting" }
  /** `retireTimer`: set while the pool has more than `min` workers (idle_worker_ttl). */
  | { kind: "idle"; retireTimer: NodeJS.Timeout | undefined }
  | { kind: "busy"; sessionId: string }
  | { kind: "cleaning" };

export type EventFields = Partial<Parameters<EventLog["append"]>[0]>;

export interface WorkersHost {
  emit(type: HerdEventType, fields: EventFields): void;
  /** A counted worker exited or failed a check (WorkerHooks.onFailure). */
  onFailure(worker: PoolWorker, reason: string, exit?: WorkerExit): void;
  /** Hands a newly idle worker to the oldest waiter; false when nobody waits. */
  offer(worker: PoolWorker): boolean;
  /** A start failed: the oldest waiter learns why. */
  startFailed(error: HerdError): void;
  /** A worker went or a backoff ran out: serve the queue (the Pool's pump). */
  pump(): void;
  /** Acquires queued for a worker: demand in hand (the workers starting for them are not spare). */
  waiting(): number;
}

/** How long a retired worker's tree may take to go before its replacement starts anyway. */
const REPLACE_AFTER_MS = 100;

export class PoolWorkers {
  private readonly slots = new Map<PoolWorker, Slot>();
  /** Idle workers, most recently used last (taken from the end: warm caches). */
  private readonly idle: PoolWorker[] = [];
  private readonly stopping = new Set<Promise<unknown>>();
  /** Why a worker's crash started a backoff; quoted when it stops. */
  private readonly crashNotes = new WeakMap<PoolWorker, string>();
  private readonly supply: WorkerSupply;
  private readonly backoff: RestartBackoff;
  /** How many workers to keep warm: `min`, or under `warm: auto` what demand needs. */
  readonly demand: DemandShaper;

  constructor(
    private readonly options: PoolOptions,
    private readonly deps: SupplyDeps,
    private readonly shutdown: AbortSignal,
    private readonly host: WorkersHost,
  ) {
    this.demand = new DemandShaper(options, {
      busy: () => this.counts().busy + host.waiting(),
      total: () => this.slots.size,
      grow: () => this.replaceRetired(),
      trim: (count) => {
        for (const worker of this.idle.slice(0, count)) {
          this.retire(worker, "idle above the warm target", options.stopGraceMs).catch(() => {});
        }
      },
      changed: (plan, bootMs) =>
        host.emit("warm_target_changed", {
          warmTarget: plan.target,
          reason: `${plan.rate.toFixed(2)} new sessions/s${plan.panic ? " (surge)" : ""} × boot ${bootMs} ms`,
        }),
    });
    this.supply = new WorkerSupply(
      options,
      deps,
      shutdown,
      (w, reason, exit) => host.onFailure(w, reason, exit),
      () => this.demand.plan().prepared,
    );
    this.backoff = new RestartBackoff({
      initialMs: options.restartBackoffMs,
      maxMs: options.restartBackoffMaxMs,
      resetAfterMs: options.restartStableMs,
      resume: () => this.replaceRetired(),
    });
  }

  /** Starts `min` workers and resolves when they serve; rejects if any cannot start. */
  async start(): Promise<void> {
    const starts: Promise<PoolWorker>[] = [];
    for (let i = 0; i < this.options.min; i++) starts.push(this.spawn());
    await Promise.all(starts);
    this.supply.prepareSpare();
  }

  // ---- counts --------------------------------------------------------------------------------

  get size(): number {
    return this.slots.size;
  }

  get idleCount(): number {
    return this.idle.length;
  }

  starting(): number {
    let n = 0;
    for (const slot of this.slots.values()) if (slot.kind === "starting") n++;
    return n;
  }

  /** No idle worker and no room to start one. */
  atMax(): boolean {
    return this.idle.length === 0 && this.slots.size >= this.options.max;
  }

  /** Workers that are idle, starting, or may still start: what a new waiter can hope for. */
  room(): number {
    return this.idle.length + this.starting() + (this.options.max - this.slots.size);
  }

  counts(): { total: number; idle: number; busy: number; starting: number } {
    let busy = 0;
    let starting = 0;
    for (const slot of this.slots.values()) {
      if (slot.kind === "busy" || slot.kind === "cleaning") busy++;
      else if (slot.kind === "starting") starting++;
    }
    return { total: this.slots.size, idle: this.idle.length, busy, starting };
  }

  crashState(): BackoffState {
    return this.backoff.state();
  }

  /** Why no worker came, when the pool is crash-looping. */
  crashLoop(): HerdError | undefined {
    return this.backoff.explain(this.options.name);
  }

  // ---- sessions' workers ---------------------------------------------------------------------

  /** The most recently used idle worker, out of the idle list: bind it in this tick. */
  popIdle(): PoolWorker | undefined {
    return this.idle.pop();
  }

  /** `worker` now serves `sessionId`. */
  assign(worker: PoolWorker, sessionId: string): void {
    const slot = this.slots.get(worker);
    if (slot?.kind === "idle") clearTimeout(slot.retireTimer);
    this.slots.set(worker, { kind: "busy", sessionId });
  }

  /** A worker adopted from a predecessor daemon (restart), busy with its session. */
  adopt(worker: PoolWorker, sessionId: string): void {
    this.slots.set(worker, { kind: "busy", sessionId });
  }

  /** No longer this pool's (handed to a successor daemon): not stopped, just not counted. */
  forget(worker: PoolWorker): void {
    this.slots.delete(worker);
  }

  sessionOf(worker: PoolWorker): string | undefined {
    const slot = this.slots.get(worker);
    return slot?.kind === "busy" ? slot.sessionId : undefined;
  }

  /** Its session ended: nobody can take it until it is reused or retired. */
  release(worker: PoolWorker): void {
    if (this.slots.get(worker)?.kind === "busy") this.slots.set(worker, { kind: "cleaning" });
  }

  isCleaning(worker: PoolWorker): boolean {
    return this.slots.get(worker)?.kind === "cleaning";
  }

  /**
   * Back to idle once the last session's processes are gone (clean-reuse.ts). If the worker
   * fails or the pool closes in between, whoever took it out of cleaning owns it.
   */
  async reuse(worker: PoolWorker, why: string): Promise<void> {
    let killed: number[];
    try {
      killed = await worker.killStrays();
    } catch (err) {
      if (this.isCleaning(worker))
        await this.retire(worker, `${why}; ${(err as Error).message}`, 0);
      return;
    }
    if (killed.length > 0) {
      this.deps.logger.info(
        { pool: this.options.name, worker: worker.id, killed: killed.length },
        "killed the processes the last session left",
      );
    }
    if (this.isCleaning(worker)) this.makeIdle(worker);
  }

  // ---- starts and retirements ----------------------------------------------------------------

  /** Starts workers for `waiting` queued acquires beyond those starting, while under max. */
  startFor(waiting: number): void {
    // spawn reaches the queue only through its start's promise: `waiting` holds for the loop.
    while (
      !this.shutdown.aborted &&
      waiting > this.starting() &&
      this.slots.size < this.options.max &&
      this.backoff.mayStart()
    ) {
      this.spawn().catch(() => {});
    }
  }

  /** A worker died on its own, or never started: counts toward the crash streak. */
  crashed(worker: PoolWorker, reason: string): void {
    const delay = this.backoff.crashed(
      worker.readyAt > 0 ? Date.now() - worker.readyAt : 0,
      reason,
    );
    if (delay === 0) return;
    const { streak } = this.backoff.state();
    this.crashNotes.set(worker, `crash ${streak} in a row: next start in ${delay} ms`);
    this.deps.logger.warn(
      { pool: this.options.name, streak, delayMs: delay, reason },
      "workers keep crashing; backing off",
    );
  }

  /** Takes a worker out of service and ends its tree; replacements start at once. */
  async retire(worker: PoolWorker, reason: string, graceMs: number): Promise<void> {
    const slot = this.slots.get(worker);
    if (!slot) return;
    if (slot.kind === "idle") {
      clearTimeout(slot.retireTimer);
      const index = this.idle.indexOf(worker);
      if (index >= 0) this.idle.splice(index, 1);
    }
    this.slots.delete(worker);
    const stopped = worker.stop(graceMs);
    this.stopping.add(stopped);
    const replace = setTimeout(() => this.replaceRetired(), REPLACE_AFTER_MS);
    const gone = () => {
      clearTimeout(replace);
      this.replaceRetired();
    };
    stopped.then(gone, gone);
    try {
      const exit = await stopped;
      this.host.emit("worker_stopped", {
        workerId: worker.id,
        workerPid: worker.pid,
        reason: this.withNote(reason, worker),
        ...(exit ? { exit } : {}),
      });
      this.deps.logger.info(
        { pool: this.options.name, worker: worker.id, reason },
        "worker stopped",
      );
    } finally {
      this.stopping.delete(stopped);
    }
  }

  private spawn(): Promise<PoolWorker> {
    const worker = this.supply.take();
    this.slots.set(worker, { kind: "starting" });
    const startedAt = performance.now();
    const spawnedAt = Date.now();
    return worker.start(this.shutdown).then(
      () => {
        this.demand.booted(worker.readyAt - spawnedAt);
        this.backoff.watch(worker.readyAt, () => worker.state.kind === "ready");
        this.host.emit("worker_started", {
          workerId: worker.id,
          workerPid: worker.pid,
          startSeconds: (performance.now() - startedAt) / 1_000,
        });
        this.deps.logger.info(
          { pool: this.options.name, worker: worker.id, pid: worker.pid, port: worker.port },
          "worker started",
        );
        if (this.shutdown.aborted) {
          this.retire(worker, "pool shutting down", this.options.stopGraceMs).catch(() => {});
        } else {
          this.makeIdle(worker);
        }
        return worker;
      },
      (err: unknown) => {
        this.slots.delete(worker);
        const error =
          err instanceof HerdError
            ? err
            : new HerdError("unavailable", String(err), { cause: err });
        if (!this.shutdown.aborted) this.crashed(worker, error.message);
        this.host.emit("worker_stopped", {
          workerId: worker.id,
          reason: this.withNote(error.message, worker),
        });
        this.deps.logger.error(
          { pool: this.options.name, worker: worker.id, err: error.message },
          "worker failed to start",
        );
        this.host.startFailed(error);
        if (!this.shutdown.aborted) this.replaceRetired();
        throw error;
      },
    );
  }

  /** Idle: to the oldest waiter if there is one, else onto the idle list. */
  private makeIdle(worker: PoolWorker): void {
    const slot: Slot = { kind: "idle", retireTimer: undefined };
    this.slots.set(worker, slot);
    if (this.host.offer(worker)) return;
    this.idle.push(worker);
    // Under warm: auto the plan lets surplus idle workers go, not a per-worker clock.
    if (this.demand.auto) {
      this.demand.replan();
      return;
    }
    if (this.slots.size > this.options.min && this.options.idleWorkerTtlMs > 0) {
      slot.retireTimer = setTimeout(() => {
        if (this.slots.get(worker)?.kind === "idle" && this.slots.size > this.options.min) {
          this.retire(worker, "surplus idle worker", this.options.stopGraceMs).catch(() => {});
        }
      }, this.options.idleWorkerTtlMs);
      slot.retireTimer.unref();
    }
  }

  private replaceRetired(): void {
    if (this.shutdown.aborted) return;
    this.ensureWarm();
    this.host.pump();
  }

  /** Grows the pool to its warm plan: `min` (and, under warm: auto, the demand's target). */
  private ensureWarm(): void {
    const wanted = this.demand.plan().workers;
    while (!this.shutdown.aborted && this.slots.size < wanted && this.backoff.mayStart()) {
      this.spawn().catch(() => {});
    }
  }

  /** A stop reason with the crash-loop note, if the pool started backing off at this worker. */
  private withNote(reason: string, worker: PoolWorker): string {
    const note = this.crashNotes.get(worker);
    return note ? `${reason}; ${note}` : reason;
  }

  // ---- shutdown ------------------------------------------------------------------------------

  /** After the shutdown signal: the spare is discarded and no backoff resumes. */
  async close(): Promise<void> {
    this.demand.close();
    await this.supply.close();
    this.backoff.close();
  }

  /** Retires every worker but those still starting (they abort through the shutdown signal). */
  retireAll(reason: string): Promise<void>[] {
    const started = [...this.slots].filter(([, slot]) => slot.kind !== "starting");
    return started.map(([w]) => this.retire(w, reason, this.options.stopGraceMs));
  }

  /** Resolves when every tree being stopped is gone. */
  async stopped(): Promise<void> {
    await Promise.allSettled([...this.stopping]);
  }

  /** Waits (up to 10 s) for workers still starting to abort and clean up themselves. */
  async drained(): Promise<void> {
    for (let waited = 0; this.slots.size > 0 && waited < 10_000; waited += 5) {
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /** Synchronous last resort when the daemon process is exiting right now. */
  killNow(): void {
    for (const w of this.slots.keys()) w.killNow();
  }
}
