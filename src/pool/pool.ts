// One named pool: its workers, its sessions, its FIFO queue. Read this before touching acquire.
// Its parts: pool-sessions.ts keeps the session records, leases and clocks; worker-supply.ts
// makes the workers (through the PoolWorker seam, pool-worker.ts) and keeps the spare.
//
// Invariants:
//   - a session id maps to exactly one worker for the session's whole life, and a busy worker
//     serves exactly one session (its busy state's sessionId ⇄ the sessions map);
//   - concurrent acquires of one new id share one Flight, hence one worker (singleflight);
//   - workers.size never exceeds max, counting starting workers; a worker being torn down no
//     longer counts, so a new acquire can start a worker while it dies. The automatic
//     replacement (keeping min warm, serving the queue) waits until its tree is gone, or has had
//     REPLACE_AFTER_MS to go: a worker booting beside a dying tree slows the reaping (tree gone
//     p50 5 -> 13 ms here);
//   - a waiter is served or removed synchronously: `take` binds the worker to the session in
//     the same tick it leaves the queue, and a waiter that times out or is cancelled is spliced
//     out before it can be served — so no worker is ever handed to nobody.
//   - a session's client connections are its `http`/`websocket` leases; when the last closes
//     and the client counts as gone (reconnect-window.ts), or its holder goes, the session gets
//     one reconnect window, cancelled by any new lease and by the session's end
//     (pool-sessions.ts);
//   - a reused worker is idle again only after the last session's processes are gone
//     (clean-reuse.ts); idle sessions yield to waiters only as preemption.ts allows.
//
// Concurrency: single-threaded event loop. Every state change below happens synchronously
// between awaits; the only awaits are spawning and stopping trees, after which state is
// re-checked rather than assumed.

import type {
  AcquireOptions,
  ContainmentRow,
  HerdEventType,
  Lease,
  LeaseKind,
  PoolOptions,
  PoolStats,
  ReleaseOptions,
  SessionEnd,
  SessionInfo,
  SessionOrigin,
  WorkerExit,
} from "../core/index.ts";
import { HerdError } from "../core/index.ts";
import { CpuActivity } from "./cpu-activity.ts";
import { DemandShaper } from "./demand-shaper.ts";
import type { EventLog } from "./event-log.ts";
import { type LongTimer, setLongTimeout } from "./long-timer.ts";
import { PoolSessions, type Session } from "./pool-sessions.ts";
import type { PoolWorker, WorkerState } from "./pool-worker.ts";
import { Preemption } from "./preemption.ts";
import { RestartBackoff } from "./restart-backoff.ts";
import type { SessionRegistry } from "./session-registry.ts";
import { type SupplyDeps, WorkerSupply } from "./worker-supply.ts";

/** What a new session keeps of its acquire: the labels as they were at the call. */
function sessionFields(opts: AcquireOptions): {
  labels: Record<string, string>;
  origin: SessionOrigin;
} {
  return { labels: { ...(opts.labels ?? {}) }, origin: opts.origin ?? "control_plane" };
}

/** A stop reason with the crash-loop note, if the pool started backing off at this worker. */
function withNote(reason: string, worker: PoolWorker): string {
  return worker.crashNote ? `${reason}; ${worker.crashNote}` : reason;
}

interface Waiter {
  take(worker: PoolWorker): void;
  fail(error: HerdError): void;
}

interface Flight {
  promise: Promise<SessionInfo>;
  participants: number;
  abort: AbortController;
}

export interface PoolDeps extends SupplyDeps {
  /** What containment the workers get (GetStats shows it). */
  containment: ContainmentRow[];
  events: EventLog;
  registry: SessionRegistry;
  /**
   * Why a worker died that herd did not stop itself, when something outside the pool knows
   * (the cluster's fencing watchdog): such a death ends its session with that reason and is no
   * crash (no backoff). Undefined: a crash.
   */
  deathCause?(): string | undefined;
}

const END_EVENT: Record<SessionEnd["kind"], HerdEventType> = {
  released: "session_released",
  expired: "session_expired",
  lost: "session_lost",
};

/** How long a retired worker's tree may take to go before its replacement starts anyway. */
const REPLACE_AFTER_MS = 100;

export class Pool {
  private readonly workers = new Set<PoolWorker>();
  /** Idle workers, most recently used last (taken from the end: warm caches). */
  private readonly idle: PoolWorker[] = [];
  private readonly waiters: Waiter[] = [];
  private readonly flights = new Map<string, Flight>();
  private readonly sessions: PoolSessions;
  private readonly stopping = new Set<Promise<unknown>>();
  private readonly shutdown = new AbortController();
  private readonly supply: WorkerSupply;
  private readonly backoff: RestartBackoff;
  private lastQueued = 0;
  private queueReport: Promise<void> | undefined;
  private readonly preemption: Preemption<Session>;
  private readonly demand: DemandShaper;
  private readonly activity: CpuActivity;

  constructor(
    readonly options: PoolOptions,
    private readonly deps: PoolDeps,
  ) {
    this.sessions = new PoolSessions(options, {
      registry: deps.registry,
      logger: deps.logger,
      end: (session, end) => this.end(session, { end }),
    });
    this.activity = new CpuActivity(options, {
      sessions: () => this.sessions.values(),
      touch: (id) => this.sessions.touch(id),
    });
    this.demand = new DemandShaper(options, {
      // Queued acquires are demand in hand: the workers starting for them are not spare.
      busy: () => this.countBusy() + this.waiters.length,
      total: () => this.workers.size,
      grow: () => this.replaceRetired(),
      trim: (count) => {
        for (const worker of this.idle.slice(0, count)) {
          this.retire(worker, "idle above the warm target", this.options.stopGraceMs).catch(
            () => {},
          );
        }
      },
      changed: (plan, bootMs) =>
        this.emit("warm_target_changed", {
          warmTarget: plan.target,
          reason: `${plan.rate.toFixed(2)} new sessions/s${plan.panic ? " (surge)" : ""} × boot ${bootMs} ms`,
        }),
    });
    this.supply = new WorkerSupply(
      options,
      deps,
      this.shutdown.signal,
      (w, reason, exit) => this.onWorkerFailure(w, reason, exit),
      () => this.demand.plan().prepared,
    );
    this.backoff = new RestartBackoff({
      initialMs: options.restartBackoffMs,
      maxMs: options.restartBackoffMaxMs,
      resetAfterMs: options.restartStableMs,
      resume: () => this.replaceRetired(),
    });
    this.preemption = new Preemption(options.preemptIdleMs, {
      atMax: () => this.idle.length === 0 && this.workers.size >= this.options.max,
      waiting: () => this.waiters.length,
      starting: () => this.countStarting(),
      sessions: () => this.sessions.values(),
      preempt: (session) => this.end(session, { end: { kind: "expired", reason: "preempted" } }),
    });
  }

  get name(): string {
    return this.options.name;
  }

  /** Starts `min` workers and resolves when they serve; rejects if any cannot start. */
  async start(): Promise<void> {
    const starts: Promise<PoolWorker>[] = [];
    for (let i = 0; i < this.options.min; i++) starts.push(this.spawn());
    await Promise.all(starts);
    this.supply.prepareSpare();
  }

  // ---- acquire -------------------------------------------------------------------------------

  hasFlight(id: string): boolean {
    return this.flights.has(id);
  }

  async acquire(id: string, opts: AcquireOptions): Promise<SessionInfo> {
    this.assertOpen();
    const live = this.sessions.get(id);
    if (live) {
      this.touch(id);
      return this.sessions.info(live);
    }
    let flight = this.flights.get(id);
    if (!flight) this.demand.arrived();
    // Fast path: an idle worker and nobody ahead of us. Bound in this tick, so there is nothing
    // to share with a concurrent acquire of the id (it finds the session live) and nothing to
    // wait for: no flight, no deadline timer (a third of an in-process acquire's cost).
    if (!flight && this.waiters.length === 0 && this.idle.length > 0 && !opts.signal?.aborted) {
      const { labels, origin } = sessionFields(opts);
      return this.bind(id, this.idle.pop()!, labels, origin);
    }
    if (!flight) {
      flight = this.startFlight(id, opts);
      this.flights.set(id, flight);
    }
    return this.join(flight, opts);
  }

  private startFlight(id: string, opts: AcquireOptions): Flight {
    const abort = new AbortController();
    const { labels, origin } = sessionFields(opts);
    const promise = new Promise<SessionInfo>((resolve, reject) => {
      const waiter: Waiter = {
        take: (worker) => {
          abort.signal.removeEventListener("abort", onAbort);
          resolve(this.bind(id, worker, labels, origin));
        },
        fail: (error) => {
          abort.signal.removeEventListener("abort", onAbort);
          reject(error);
        },
      };
      const onAbort = () => {
        const index = this.waiters.indexOf(waiter);
        if (index >= 0) this.waiters.splice(index, 1);
        this.reportQueue();
        reject(abort.signal.reason);
      };
      abort.signal.addEventListener("abort", onAbort, { once: true });
      const spare =
        this.idle.length + this.countStarting() + (this.options.max - this.workers.size);
      const ahead = this.waiters.length;
      if (ahead >= spare + this.options.queueLimit || (opts.waitMs === 0 && ahead >= spare)) {
        waiter.fail(
          new HerdError(
            "resource_exhausted",
            `pool ${this.name} is at max (${this.options.max} workers) with ${ahead} acquires queued (queue_limit ${this.options.queueLimit})`,
          ),
        );
        return;
      }
      this.waiters.push(waiter);
      this.reportQueue();
      this.pump();
    });
    const flight: Flight = { promise, participants: 0, abort };
    promise.then(
      () => this.flights.delete(id),
      () => this.flights.delete(id),
    );
    return flight;
  }

  /** One caller's view of a shared flight: its own deadline and signal, nobody else's. */
  private async join(flight: Flight, opts: AcquireOptions): Promise<SessionInfo> {
    const waitMs = opts.waitMs || this.options.acquireTimeoutMs;
    flight.participants++;
    let timer: LongTimer | undefined;
    let onAbort: (() => void) | undefined;
    const own = new Promise<never>((_, reject) => {
      // A caller's wait may exceed what setTimeout can hold (an RPC asking for years).
      timer = setLongTimeout(
        () =>
          reject(
            // A crash loop says so, rather than a generic deadline.
            this.backoff.explain(this.name) ??
              new HerdError(
                "deadline_exceeded",
                `no worker of pool ${this.name} became free within ${waitMs} ms`,
              ),
          ),
        waitMs,
      );
      const signal = opts.signal;
      if (signal) {
        onAbort = () => reject(new HerdError("cancelled", "acquire cancelled by the caller"));
        if (signal.aborted) onAbort();
        else signal.addEventListener("abort", onAbort, { once: true });
      }
    });
    try {
      return await Promise.race([flight.promise, own]);
    } catch (err) {
      if (--flight.participants === 0) flight.abort.abort(err);
      throw err;
    } finally {
      timer?.clear();
      if (onAbort) opts.signal?.removeEventListener("abort", onAbort);
    }
  }

  /** Serves queued waiters from idle workers, and starts workers for the rest while under max. */
  private pump(): void {
    while (this.waiters.length > 0 && this.idle.length > 0) {
      this.waiters.shift()!.take(this.idle.pop()!);
    }
    while (
      !this.shutdown.signal.aborted &&
      this.waiters.length > this.countStarting() &&
      this.workers.size < this.options.max &&
      this.backoff.mayStart()
    ) {
      this.spawn().catch(() => {});
    }
    this.reportQueue();
    this.preemption.check();
  }

  private bind(
    id: string,
    worker: PoolWorker,
    labels: Record<string, string>,
    origin: SessionOrigin,
  ): SessionInfo {
    if (worker.state.kind === "idle") clearTimeout(worker.state.retireTimer);
    worker.state = { kind: "busy", sessionId: id };
    const { info } = this.sessions.open(id, worker, labels, origin);
    this.demand.replan();
    this.emit("session_acquired", { session: info, workerId: worker.id, workerPid: worker.pid });
    this.deps.logger.info({ pool: this.name, session: id, worker: worker.id }, "session acquired");
    return info;
  }

  // ---- release and expiry --------------------------------------------------------------------

  release(id: string, opts: ReleaseOptions): Promise<SessionInfo> {
    const session = this.sessions.get(id);
    if (!session) throw new HerdError("not_found", `no live session ${JSON.stringify(id)}`);
    return this.end(session, opts);
  }

  private async end(session: Session, opts: ReleaseOptions): Promise<SessionInfo> {
    if (!this.sessions.close(session)) return this.sessions.info(session);
    const end = opts.end ?? { kind: "released" };
    const info = this.sessions.info(session);
    const { worker } = session;
    if (worker.state.kind === "busy") worker.state = { kind: "busy", sessionId: undefined };
    const reason = end.reason;
    this.emit(END_EVENT[end.kind], {
      session: info,
      workerId: worker.id,
      workerPid: worker.pid,
      ...(reason ? { reason } : {}),
      ...(end.kind === "lost" && end.exit ? { exit: end.exit } : {}),
    });
    this.deps.logger.info(
      { pool: this.name, session: session.id, worker: worker.id, end: end.kind, reason },
      `session ${end.kind}`,
    );
    session.ended.abort(end);
    const keep = this.options.reuse && !opts.kill && end.kind !== "lost";
    const why = `session ${session.id} ${end.kind}${reason ? `: ${reason}` : ""}`;
    if (worker.state.kind === "busy" && keep) await this.reuse(worker, why);
    // A session's end kills at once; only a daemon shutdown grants the SIGTERM grace.
    else
      await this.retire(worker, why, this.shutdown.signal.aborted ? this.options.stopGraceMs : 0);
    return info;
  }

  /**
   * Back to idle once the last session's processes are gone (clean-reuse.ts). Meanwhile the
   * worker stays "busy" with no session, so nobody can take it; if it fails or the pool closes
   * in between, whoever changed its state owns it.
   */
  private async reuse(worker: PoolWorker, why: string): Promise<void> {
    let killed: number[];
    try {
      killed = await worker.killStrays();
    } catch (err) {
      if (worker.state.kind === "busy") {
        await this.retire(worker, `${why}; ${(err as Error).message}`, 0);
      }
      return;
    }
    if (killed.length > 0) {
      this.deps.logger.info(
        { pool: this.name, worker: worker.id, killed: killed.length },
        "killed the processes the last session left",
      );
    }
    if (worker.state.kind === "busy" && worker.state.sessionId === undefined) this.makeIdle(worker);
  }

  touch(id: string): void {
    this.sessions.touch(id);
  }

  lease(id: string, kind: LeaseKind): Lease {
    return this.sessions.lease(id, kind);
  }

  clientGone(id: string): void {
    this.sessions.clientGone(id);
  }

  // ---- workers -------------------------------------------------------------------------------

  private countBusy(): number {
    let n = 0;
    for (const w of this.workers) if (w.state.kind === "busy") n++;
    return n;
  }

  private countStarting(): number {
    let n = 0;
    for (const w of this.workers) if (w.state.kind === "starting") n++;
    return n;
  }

  private spawn(): Promise<PoolWorker> {
    const worker = this.supply.take();
    this.workers.add(worker);
    const spawnedAt = Date.now();
    const started = worker.start(this.shutdown.signal).then(
      () => {
        this.demand.booted(worker.readyAt - spawnedAt);
        this.backoff.watch(
          worker.readyAt,
          () => worker.state.kind === "idle" || worker.state.kind === "busy",
        );
        this.emit("worker_started", { workerId: worker.id, workerPid: worker.pid });
        this.deps.logger.info(
          { pool: this.name, worker: worker.id, pid: worker.pid, port: worker.port },
          "worker started",
        );
        if (this.shutdown.signal.aborted) {
          this.retire(worker, "pool shutting down", this.options.stopGraceMs).catch(() => {});
        } else {
          this.makeIdle(worker);
        }
        return worker;
      },
      (err: unknown) => {
        this.workers.delete(worker);
        const error =
          err instanceof HerdError
            ? err
            : new HerdError("unavailable", String(err), { cause: err });
        if (!this.shutdown.signal.aborted) this.crashed(worker, error.message);
        this.emit("worker_stopped", {
          workerId: worker.id,
          reason: withNote(error.message, worker),
        });
        this.deps.logger.error(
          { pool: this.name, worker: worker.id, err: error.message },
          "worker failed to start",
        );
        // The oldest waiter learns why; the rest keep waiting for the next attempt.
        this.waiters.shift()?.fail(error);
        if (!this.shutdown.signal.aborted) this.replaceRetired();
        throw error;
      },
    );
    return started;
  }

  private makeIdle(worker: PoolWorker): void {
    const idle: WorkerState = { kind: "idle", retireTimer: undefined };
    worker.state = idle;
    const waiter = this.waiters.shift();
    if (waiter) {
      waiter.take(worker);
      this.reportQueue();
      return;
    }
    this.idle.push(worker);
    // Under warm: auto the plan lets surplus idle workers go, not a per-worker clock.
    if (this.demand.auto) {
      this.demand.replan();
      return;
    }
    if (this.workers.size > this.options.min && this.options.idleWorkerTtlMs > 0) {
      idle.retireTimer = setTimeout(() => {
        if (worker.state.kind === "idle" && this.workers.size > this.options.min) {
          this.retire(worker, "surplus idle worker", this.options.stopGraceMs).catch(() => {});
        }
      }, this.options.idleWorkerTtlMs);
      idle.retireTimer.unref();
    }
  }

  private onWorkerFailure(worker: PoolWorker, reason: string, exit?: WorkerExit): void {
    if (!exit) {
      this.emit("worker_unhealthy", { workerId: worker.id, workerPid: worker.pid, reason });
    }
    const cause = exit ? this.deps.deathCause?.() : undefined;
    if (cause === undefined) {
      this.deps.logger.warn({ pool: this.name, worker: worker.id, reason }, "worker failed");
      this.crashed(worker, reason);
    }
    const sessionId = worker.state.kind === "busy" ? worker.state.sessionId : undefined;
    const session = sessionId ? this.sessions.get(sessionId) : undefined;
    const end: SessionEnd = { kind: "lost", reason: cause ?? reason, ...(exit ? { exit } : {}) };
    const done = session ? this.end(session, { end, kill: true }) : this.retire(worker, reason, 0);
    done.catch(() => {});
  }

  /** A worker died on its own, or never started: counts toward the crash streak. */
  private crashed(worker: PoolWorker, reason: string): void {
    const delay = this.backoff.crashed(
      worker.readyAt > 0 ? Date.now() - worker.readyAt : 0,
      reason,
    );
    if (delay === 0) return;
    const { streak } = this.backoff.state();
    worker.crashNote = `crash ${streak} in a row: next start in ${delay} ms`;
    this.deps.logger.warn(
      { pool: this.name, streak, delayMs: delay, reason },
      "workers keep crashing; backing off",
    );
  }

  /** Takes a worker out of service and ends its tree; replacements start at once. */
  private async retire(worker: PoolWorker, reason: string, graceMs: number): Promise<void> {
    if (worker.state.kind === "stopping" || worker.state.kind === "stopped") return;
    const index = this.idle.indexOf(worker);
    if (index >= 0) this.idle.splice(index, 1);
    this.workers.delete(worker);
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
      this.emit("worker_stopped", {
        workerId: worker.id,
        workerPid: worker.pid,
        reason: withNote(reason, worker),
        ...(exit ? { exit } : {}),
      });
      this.deps.logger.info({ pool: this.name, worker: worker.id, reason }, "worker stopped");
    } finally {
      this.stopping.delete(stopped);
    }
  }

  private replaceRetired(): void {
    if (this.shutdown.signal.aborted) return;
    this.ensureWarm();
    this.pump();
  }

  /** Grows the pool to its warm plan: `min` (and, under warm: auto, the demand's target). */
  private ensureWarm(): void {
    const wanted = this.demand.plan().workers;
    while (!this.shutdown.signal.aborted && this.workers.size < wanted && this.backoff.mayStart()) {
      this.spawn().catch(() => {});
    }
  }

  // ---- views ---------------------------------------------------------------------------------

  lookup(id: string): SessionInfo | undefined {
    const session = this.sessions.get(id);
    return session ? this.sessions.info(session) : undefined;
  }

  list(): SessionInfo[] {
    return [...this.sessions.values()].map((s) => this.sessions.info(s));
  }

  stats(): PoolStats {
    const crash = this.backoff.state();
    let busy = 0;
    let starting = 0;
    for (const w of this.workers) {
      if (w.state.kind === "busy") busy++;
      else if (w.state.kind === "starting") starting++;
    }
    return {
      name: this.name,
      workersTotal: this.workers.size,
      workersIdle: this.idle.length,
      workersBusy: busy,
      workersStarting: starting,
      sessions: this.sessions.size,
      queued: this.waiters.length,
      min: this.options.min,
      max: this.options.max,
      crashStreak: crash.streak,
      restartBackoffMs: crash.remainingMs,
      ...(crash.reason !== undefined ? { lastCrash: crash.reason } : {}),
      containment: this.deps.containment,
      ...this.demand.stats(),
    };
  }

  private emit(type: HerdEventType, fields: Partial<Parameters<EventLog["append"]>[0]>): void {
    const sessionId = fields.session?.id;
    this.deps.events.append({
      ...fields,
      type,
      pool: this.name,
      ...(sessionId ? { sessionId } : {}),
    });
  }

  /** Queue depth changes are reported once per tick, not once per push and pop. */
  private reportQueue(): void {
    this.queueReport ??= Promise.resolve().then(() => {
      this.queueReport = undefined;
      const queued = this.waiters.length;
      if (queued === this.lastQueued) return;
      this.lastQueued = queued;
      this.emit("queue_changed", { queued });
    });
  }

  private assertOpen(): void {
    if (this.shutdown.signal.aborted) {
      throw new HerdError("unavailable", "herd is shutting down");
    }
  }

  // ---- shutdown ------------------------------------------------------------------------------

  /** Ends every session and worker; resolves when every tree is gone. */
  async close(): Promise<void> {
    if (this.shutdown.signal.aborted) {
      await Promise.allSettled([...this.stopping]);
      return;
    }
    this.shutdown.abort(new HerdError("unavailable", "herd is shutting down"));
    this.preemption.close();
    this.demand.close();
    this.activity.close();
    await this.supply.close();
    this.backoff.close();
    const shuttingDown = new HerdError("unavailable", "herd is shutting down");
    for (const waiter of this.waiters.splice(0)) waiter.fail(shuttingDown);
    const ends = [...this.sessions.values()].map((s) =>
      this.end(s, { kill: true, end: { kind: "expired", reason: "shutdown" } }),
    );
    const idle = [...this.workers].filter((w) => w.state.kind !== "starting");
    const retires = idle.map((w) => this.retire(w, "shutdown", this.options.stopGraceMs));
    await Promise.allSettled([...ends, ...retires]);
    await Promise.allSettled([...this.stopping]);
    // Workers still starting abort through the shutdown signal and clean up themselves.
    for (let waited = 0; this.workers.size > 0 && waited < 10_000; waited += 5) {
      await new Promise((r) => setTimeout(r, 5));
    }
    this.deps.sandbox?.close();
  }

  /** Synchronous last resort when the daemon process is exiting right now. */
  killNow(): void {
    for (const w of this.workers) w.killNow();
  }
}
