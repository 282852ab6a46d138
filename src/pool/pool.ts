// One named pool: how sessions meet workers. An acquire is served at once from an idle worker,
// else shares its id's flight (singleflight.ts) into the queue (acquire-queue.ts: round-robin
// across tenants by weight, FIFO within one); a
// session ends released, expired or lost, and its worker is then reused or retired. Its parts:
// pool-sessions.ts keeps the session records, leases and clocks; pool-workers.ts keeps the
// workers (what each does for the pool, starts, idle retirement, crash backoff, replacement),
// made by worker-supply.ts through the PoolWorker seam (pool-worker.ts).
//
// Invariants:
//   - a session id maps to exactly one worker for the session's whole life, and a busy worker
//     serves exactly one session (its busy slot's sessionId ⇄ the sessions map);
//   - concurrent acquires of one new id share one flight, hence one worker (singleflight);
//   - a worker leaves the idle list or the queue hands it over in the same tick it is bound to
//     its session (`bind`), so no worker is ever handed to nobody;
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
  AcquireTiming,
  ContainmentRow,
  HerdEventType,
  Lease,
  LeaseKind,
  PoolOptions,
  PoolStats,
  ReleaseOptions,
  SessionEnd,
  SessionInfo,
  SessionLogs,
  SessionOrigin,
  WorkerExit,
} from "../core/index.ts";
import { HerdError } from "../core/index.ts";
import { AcquireQueue } from "./acquire-queue.ts";
import { CpuActivity } from "./cpu-activity.ts";
import type { EventLog } from "./event-log.ts";
import { type Tenant, type TenantWeight, weightOf } from "./fair-share.ts";
import { sessionLogs } from "./output-ring.ts";
import { endedSignal, type HandedSession, PoolSessions, type Session } from "./pool-sessions.ts";
import type { PoolWorker, WorkerHandOff, WorkerHooks } from "./pool-worker.ts";
import { type EventFields, PoolWorkers } from "./pool-workers.ts";
import { Preemption } from "./preemption.ts";
import type { SessionRegistry } from "./session-registry.ts";
import { acquireTiming, sessionUsage } from "./session-usage.ts";
import { Singleflight } from "./singleflight.ts";
import type { PoolSandbox } from "./worker-sandbox.ts";
import type { SupplyDeps } from "./worker-supply.ts";

/** One session and its worker on their way to a successor daemon (restart). */
export interface PoolHandOff extends WorkerHandOff {
  pool: string;
  session: HandedSession;
}

interface NewSession {
  labels: Record<string, string>;
  origin: SessionOrigin;
  tenant: Tenant;
}

/** What a new session keeps of its acquire: the labels as they were at the call. */
function sessionFields(opts: AcquireOptions): NewSession {
  return {
    labels: { ...(opts.labels ?? {}) },
    origin: opts.origin ?? "control_plane",
    tenant: opts.tenant,
  };
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
  /** What each tenant weighs in the queue and in preemption (fair-share.ts); default 1. */
  tenantWeight?: TenantWeight;
}

const END_EVENT: Record<SessionEnd["kind"], HerdEventType> = {
  released: "session_released",
  expired: "session_expired",
  lost: "session_lost",
};

export class Pool {
  private readonly shutdown = new AbortController();
  private readonly sessions: PoolSessions;
  private readonly workers: PoolWorkers;
  private readonly queue: AcquireQueue<PoolWorker>;
  private readonly flights = new Singleflight<SessionInfo>();
  private readonly preemption: Preemption<Session>;
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
    const weight = (tenant: Tenant) => weightOf(deps.tenantWeight, tenant);
    this.queue = new AcquireQueue(
      options,
      (queued) => this.emit("queue_changed", { queued }),
      weight,
    );
    this.workers = new PoolWorkers(options, deps, this.shutdown.signal, {
      emit: (type, fields) => this.emit(type, fields),
      onFailure: (w, reason, exit) => this.onWorkerFailure(w, reason, exit),
      offer: (worker) => this.queue.serve(worker),
      startFailed: (error) => this.queue.failNext(error),
      pump: () => this.pump(),
      waiting: () => this.queue.length,
    });
    this.activity = new CpuActivity(options, {
      sessions: () => this.sessions.values(),
      touch: (id) => this.sessions.touch(id),
    });
    this.preemption = new Preemption(options.preemptIdleMs, {
      max: options.max,
      weight,
      atMax: () => this.workers.atMax(),
      waiting: () => this.queue.waitingByTenant(),
      starting: () => this.workers.starting(),
      sessions: () => this.sessions.values(),
      preempt: (session) => this.end(session, { end: { kind: "expired", reason: "preempted" } }),
    });
  }

  get name(): string {
    return this.options.name;
  }

  /** What contains its workers beyond their process trees, if anything (a successor adopts with it). */
  get sandbox(): PoolSandbox | undefined {
    return this.deps.sandbox;
  }

  /** Starts `min` workers and resolves when they serve; rejects if any cannot start. */
  start(): Promise<void> {
    return this.workers.start();
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
    if (!this.flights.has(id)) this.workers.demand.arrived();
    // Fast path: an idle worker and nobody ahead of us. Bound in this tick, so there is nothing
    // to share with a concurrent acquire of the id (it finds the session live) and nothing to
    // wait for: no flight, no deadline timer (a third of an in-process acquire's cost).
    if (!this.flights.has(id) && this.queue.length === 0 && !opts.signal?.aborted) {
      const worker = this.workers.popIdle();
      if (worker) {
        const timing = acquireTiming("warm", performance.now(), worker);
        return this.bind(id, worker, sessionFields(opts), timing);
      }
    }
    const waitMs = opts.waitMs || this.options.acquireTimeoutMs;
    return this.flights.join(id, (signal) => this.enqueue(id, opts, signal), {
      waitMs,
      signal: opts.signal,
      // A crash loop says so, rather than a generic deadline.
      timedOut: () =>
        this.workers.crashLoop() ??
        new HerdError(
          "deadline_exceeded",
          `no worker of pool ${this.name} became free within ${waitMs} ms`,
        ),
    });
  }

  /** A new id's flight: queued for the next free worker, unless the queue refuses it. */
  private enqueue(id: string, opts: AcquireOptions, signal: AbortSignal): Promise<SessionInfo> {
    const fields = sessionFields(opts);
    const refusal = this.queue.refusal(this.workers.room(), opts.waitMs, opts.tenant);
    if (refusal) return Promise.reject(refusal);
    const since = performance.now();
    // An idle worker now: warm (behind other waiters for the same id). None, at max: only
    // another session's end frees one (queued); below max: one starts for it (cold).
    const outcome = this.workers.idleCount > 0 ? "warm" : this.workers.atMax() ? "queued" : "cold";
    const bound = this.queue.wait(
      (worker) => this.bind(id, worker, fields, acquireTiming(outcome, since, worker)),
      signal,
      opts.tenant,
    );
    this.pump();
    return bound;
  }

  /** Serves queued waiters from idle workers, and starts workers for the rest while under max. */
  private pump(): void {
    while (this.queue.length > 0) {
      const worker = this.workers.popIdle();
      if (!worker) break;
      this.queue.serve(worker);
    }
    this.workers.startFor(this.queue.length);
    this.queue.reportDepth();
    this.preemption.check();
  }

  private bind(
    id: string,
    worker: PoolWorker,
    { labels, origin, tenant }: NewSession,
    acquire: AcquireTiming,
  ): SessionInfo {
    this.workers.assign(worker, id);
    const { info } = this.sessions.open(id, worker, labels, origin, tenant);
    this.workers.demand.replan();
    this.emit("session_acquired", {
      session: info,
      workerId: worker.id,
      workerPid: worker.pid,
      acquire,
    });
    this.deps.logger.info({ pool: this.name, session: id, worker: worker.id }, "session acquired");
    // Only the acquire that bound it is told how that went (tracing's spans).
    return { ...info, acquire };
  }

  // ---- how a session ends --------------------------------------------------------------------

  release(id: string, opts: ReleaseOptions): Promise<SessionInfo> {
    const session = this.sessions.get(id);
    if (!session) throw new HerdError("not_found", `no live session ${JSON.stringify(id)}`);
    return this.end(session, opts);
  }

  private async end(session: Session, opts: ReleaseOptions): Promise<SessionInfo> {
    if (!this.sessions.close(session)) return this.sessions.info(session);
    const end = opts.end ?? { kind: "released" };
    const info = {
      ...this.sessions.info(session),
      usage: sessionUsage(session.worker, session.usage),
    };
    const { worker } = session;
    this.workers.release(worker);
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
    session.ended?.abort(end);
    const keep = this.options.reuse && !opts.kill && end.kind !== "lost";
    const why = `session ${session.id} ${end.kind}${reason ? `: ${reason}` : ""}`;
    if (keep && this.workers.isCleaning(worker)) await this.workers.reuse(worker, why);
    // A session's end kills at once; only a daemon shutdown grants the SIGTERM grace.
    else {
      const graceMs = this.shutdown.signal.aborted ? this.options.stopGraceMs : 0;
      await this.workers.retire(worker, why, graceMs);
    }
    return info;
  }

  /** A worker's tree exited or failed a check: its session is lost, the worker retired. */
  private onWorkerFailure(worker: PoolWorker, reason: string, exit?: WorkerExit): void {
    if (!exit) {
      this.emit("worker_unhealthy", { workerId: worker.id, workerPid: worker.pid, reason });
    }
    const cause = exit ? this.deps.deathCause?.() : undefined;
    if (cause === undefined) {
      this.deps.logger.warn({ pool: this.name, worker: worker.id, reason }, "worker failed");
      this.workers.crashed(worker, reason);
    }
    const sessionId = this.workers.sessionOf(worker);
    const session = sessionId ? this.sessions.get(sessionId) : undefined;
    const end: SessionEnd = { kind: "lost", reason: cause ?? reason, ...(exit ? { exit } : {}) };
    const done = session
      ? this.end(session, { end, kill: true })
      : this.workers.retire(worker, reason, 0);
    done.catch(() => {});
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

  // ---- restart (src/cli/restart.ts) ----------------------------------------------------------

  /**
   * Gives every live session on a ready worker, with its worker, to a successor daemon: they
   * leave this pool at once and untouched (no clock of theirs fires here again, their trees
   * are neither checked nor stopped). What is left (idle workers, sessions on workers not
   * ready) stays this pool's, for its close.
   */
  handOver(): PoolHandOff[] {
    const handed: PoolHandOff[] = [];
    for (const session of [...this.sessions.values()]) {
      const { worker } = session;
      if (worker.state.kind !== "ready" || !worker.handOff) continue;
      if (this.workers.sessionOf(worker) !== session.id) continue;
      const record = this.sessions.handOff(session);
      this.sessions.close(session);
      this.workers.forget(worker);
      handed.push({ pool: this.name, session: record, ...worker.handOff() });
    }
    return handed;
  }

  /** Owns a session and its worker handed over by a predecessor daemon (see handOver). */
  adopt(handed: PoolHandOff, make: (hooks: WorkerHooks) => PoolWorker): void {
    const worker = make({ onFailure: (w, reason, exit) => this.onWorkerFailure(w, reason, exit) });
    this.workers.adopt(worker, handed.session.id);
    this.sessions.restore(handed.session, worker);
  }

  // ---- views ---------------------------------------------------------------------------------

  lookup(id: string): SessionInfo | undefined {
    const session = this.sessions.get(id);
    return session ? this.sessions.info(session) : undefined;
  }

  /** The session's view of its worker's output (output-ring.ts); not_found if not live. */
  logs(id: string): SessionLogs {
    const session = this.sessions.get(id);
    const ring = session?.worker.output;
    if (!session || !ring)
      throw new HerdError("not_found", `no live session ${JSON.stringify(id)}`);
    return sessionLogs(ring, session.logsFrom, endedSignal(session));
  }

  list(): SessionInfo[] {
    return [...this.sessions.values()].map((s) => ({
      ...this.sessions.info(s),
      usage: sessionUsage(s.worker, s.usage),
    }));
  }

  /** The queue's tenants and their waiters, when a tenant (not the operator) waits. */
  private queuedByTenant(): Pick<PoolStats, "queuedByTenant"> {
    if (this.queue.length === 0) return {};
    const byTenant: Record<string, number> = {};
    let named = false;
    for (const [tenant, waiting] of this.queue.waitingByTenant()) {
      if (tenant === undefined) continue;
      byTenant[tenant] = waiting;
      named = true;
    }
    return named ? { queuedByTenant: byTenant } : {};
  }

  stats(): PoolStats {
    const crash = this.workers.crashState();
    const workers = this.workers.counts();
    return {
      name: this.name,
      workersTotal: workers.total,
      workersIdle: workers.idle,
      workersBusy: workers.busy,
      workersStarting: workers.starting,
      sessions: this.sessions.size,
      queued: this.queue.length,
      ...this.queuedByTenant(),
      min: this.options.min,
      max: this.options.max,
      crashStreak: crash.streak,
      restartBackoffMs: crash.remainingMs,
      ...(crash.reason !== undefined ? { lastCrash: crash.reason } : {}),
      containment: this.deps.containment,
      ...this.workers.demand.stats(),
    };
  }

  private emit(type: HerdEventType, fields: EventFields): void {
    const sessionId = fields.session?.id;
    this.deps.events.append({
      ...fields,
      type,
      pool: this.name,
      ...(sessionId ? { sessionId } : {}),
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
      await this.workers.stopped();
      return;
    }
    this.shutdown.abort(new HerdError("unavailable", "herd is shutting down"));
    this.preemption.close();
    this.activity.close();
    await this.workers.close();
    this.queue.failAll(new HerdError("unavailable", "herd is shutting down"));
    const ends = [...this.sessions.values()].map((s) =>
      this.end(s, { kill: true, end: { kind: "expired", reason: "shutdown" } }),
    );
    await Promise.allSettled([...ends, ...this.workers.retireAll("shutdown")]);
    await this.workers.stopped();
    // Workers still starting abort through the shutdown signal and clean up themselves.
    await this.workers.drained();
    this.deps.sandbox?.close();
  }

  /** Synchronous last resort when the daemon process is exiting right now. */
  killNow(): void {
    this.workers.killNow();
  }
}
