// A pool's live sessions: their records, their leases and their clocks (idle timeout, max
// lifetime, the reconnect window). The Pool decides when a session begins and how it ends
// (its worker is reused or retired); this says when one is due to end, through `end`.
//
// Invariants: a session is in `live` (and the daemon's registry) from `open` until `close`,
// exactly once; `close` stops every clock of the session, so none fires for a session that
// has ended; a session with an open lease never idles out; a session has at most one reconnect
// window, cancelled by any new lease. Single-threaded: timers and lease closes run on the
// event loop, between the Pool's synchronous steps.

import type {
  Lease,
  LeaseKind,
  Logger,
  PoolOptions,
  SessionEnd,
  SessionInfo,
  SessionOrigin,
} from "../core/index.ts";
import { HerdError, newToken } from "../core/index.ts";
import type { PoolWorker } from "./pool-worker.ts";
import { endsWhenClientGoes, ReconnectWindow } from "./reconnect-window.ts";
import type { SessionRegistry } from "./session-registry.ts";
import { type UsageBaseline, usageBaseline } from "./session-usage.ts";

export interface Session {
  id: string;
  token: string;
  worker: PoolWorker;
  createdAt: number;
  lastActiveAt: number;
  expiresAt: number | undefined;
  labels: Record<string, string>;
  origin: SessionOrigin;
  /** Whose session it is (undefined: the operator's); set once, at open. */
  tenant: string | undefined;
  leases: number;
  /** Open `http` and `websocket` leases: the client's connections. */
  dataLeases: number;
  carriedWebSocket: boolean;
  /** Open while the client is gone (disconnect_grace). */
  window: ReconnectWindow | undefined;
  /**
   * Aborted with the session's end; made when something first asks for its signal (a lease,
   * a log tail: `endedSignal`), so a session nobody held ends without an abort nobody hears.
   */
  ended: AbortController | undefined;
  idleTimer: NodeJS.Timeout | undefined;
  lifetimeTimer: NodeJS.Timeout | undefined;
  /** Where in its worker's output this session's logs begin: no earlier tenant's bytes. */
  logsFrom: number;
  usage: UsageBaseline;
}

/** A session as a successor daemon restores it (restart). */
export type HandedSession = Pick<
  Session,
  "id" | "token" | "createdAt" | "lastActiveAt" | "expiresAt" | "labels" | "origin" | "tenant"
>;

export interface SessionDeps {
  registry: SessionRegistry;
  logger: Logger;
  /** Ends the session (the Pool's end); called when one of its clocks runs out. */
  end(session: Session, end: SessionEnd): Promise<unknown>;
}

export class PoolSessions {
  private readonly live = new Map<string, Session>();

  constructor(
    private readonly options: PoolOptions,
    private readonly deps: SessionDeps,
  ) {}

  get size(): number {
    return this.live.size;
  }

  get(id: string): Session | undefined {
    return this.live.get(id);
  }

  values(): IterableIterator<Session> {
    return this.live.values();
  }

  /** Records a new session of `worker`, registered and with its clocks running. */
  open(
    id: string,
    worker: PoolWorker,
    labels: Record<string, string>,
    origin: SessionOrigin,
    tenant: string | undefined,
  ): { session: Session; info: SessionInfo } {
    const now = Date.now();
    const { maxLifetimeMs } = this.options;
    const session: Session = {
      id,
      token: newToken(),
      worker,
      createdAt: now,
      lastActiveAt: now,
      expiresAt: maxLifetimeMs > 0 ? now + maxLifetimeMs : undefined,
      labels,
      origin,
      tenant,
      ...unleased(worker),
      logsFrom: worker.output?.end ?? 0,
    };
    return { session, info: this.run(session) };
  }

  /** What a successor daemon restores a session from (restart). */
  handOff(session: Session): HandedSession {
    const { id, token, createdAt, lastActiveAt, expiresAt, labels, origin, tenant } = session;
    return { id, token, createdAt, lastActiveAt, expiresAt, labels, origin, tenant };
  }

  /**
   * A session handed over by a predecessor daemon, on a worker adopted with it: as it was, but
   * with no lease (its clients reconnect here) and its clocks restarted from its own times.
   */
  restore(handed: HandedSession, worker: PoolWorker): void {
    const session: Session = {
      ...handed,
      // JSON (the hand-over's channel) drops an undefined field: the operator's session.
      tenant: handed.tenant ?? undefined,
      worker,
      ...unleased(worker),
      logsFrom: 0,
    };
    // Touched now: its clients are reconnecting, which can take a moment.
    session.lastActiveAt = Date.now();
    this.run(session);
  }

  /** Makes `session` live: registered, its idle clock and its lifetime (to expiresAt) running. */
  private run(session: Session): SessionInfo {
    this.live.set(session.id, session);
    const info = this.info(session);
    this.deps.registry.set(session.id, info);
    this.scheduleIdle(session);
    if (session.expiresAt !== undefined) {
      session.lifetimeTimer = setTimeout(
        () => {
          this.deps.end(session, { kind: "expired", reason: "max_lifetime" });
        },
        Math.max(0, session.expiresAt - Date.now()),
      );
      session.lifetimeTimer.unref();
    }
    return info;
  }

  /** Takes an ending session out, its clocks stopped; false if it had already ended. */
  close(session: Session): boolean {
    if (this.live.get(session.id) !== session) return false;
    this.live.delete(session.id);
    this.deps.registry.delete(session.id);
    clearTimeout(session.idleTimer);
    clearTimeout(session.lifetimeTimer);
    session.window?.cancel();
    session.window = undefined;
    return true;
  }

  touch(id: string): void {
    const session = this.live.get(id);
    if (session) session.lastActiveAt = Date.now();
  }

  lease(id: string, kind: LeaseKind): Lease {
    const session = this.live.get(id);
    if (!session) throw new HerdError("not_found", `no live session ${JSON.stringify(id)}`);
    session.leases++;
    if (kind !== "hold") session.dataLeases++;
    if (kind === "websocket") session.carriedWebSocket = true;
    clearTimeout(session.idleTimer);
    if (session.window) {
      session.window.cancel();
      session.window = undefined;
      this.deps.logger.info(
        { pool: this.options.name, session: id, worker: session.worker.id },
        "client is back within its reconnect window",
      );
    }
    let open = true;
    const ended = endedSignal(session);
    return {
      sessionId: id,
      ended,
      traffic: session.usage.traffic,
      close: () => {
        if (!open) return;
        open = false;
        session.leases--;
        session.lastActiveAt = Date.now();
        if (ended.aborted) return;
        if (
          kind !== "hold" &&
          --session.dataLeases === 0 &&
          endsWhenClientGoes(
            this.options.releaseOnDisconnect,
            session.origin,
            session.carriedWebSocket,
          )
        ) {
          this.openWindow(session);
          return;
        }
        this.scheduleIdle(session);
      },
    };
  }

  clientGone(id: string): void {
    const session = this.live.get(id);
    // Another holder is attached (an SDK re-attached before its old stream's end reached us).
    if (!session || session.leases - session.dataLeases > 0) return;
    this.openWindow(session);
  }

  info(s: Session): SessionInfo {
    return {
      id: s.id,
      pool: this.options.name,
      workerId: s.worker.id,
      workerPid: s.worker.pid,
      workerAddress: s.worker.address,
      token: s.token,
      createdAt: new Date(s.createdAt),
      lastActiveAt: new Date(s.lastActiveAt),
      ...(s.expiresAt !== undefined ? { expiresAt: new Date(s.expiresAt) } : {}),
      connections: s.leases,
      ...(s.window ? { reconnectDeadline: new Date(s.window.deadline) } : {}),
      labels: s.labels,
      ...(s.tenant !== undefined ? { tenant: s.tenant } : {}),
    };
  }

  private scheduleIdle(session: Session): void {
    const ttl = this.options.idleTtlMs;
    if (ttl <= 0 || session.leases > 0) return;
    clearTimeout(session.idleTimer);
    const due = session.lastActiveAt + ttl - Date.now();
    session.idleTimer = setTimeout(
      () => {
        if (session.leases > 0) return; // closing the last lease reschedules
        if (Date.now() - session.lastActiveAt >= ttl) {
          this.deps.end(session, { kind: "expired", reason: "idle_timeout" }).catch(() => {});
        } else {
          this.scheduleIdle(session);
        }
      },
      Math.max(due, 0),
    );
    session.idleTimer.unref();
  }

  /** The client went: end now (grace 0, reason `disconnect`) or when the window runs out. */
  private openWindow(session: Session): void {
    if (session.window) return;
    const graceMs = this.options.disconnectGraceMs;
    if (graceMs <= 0) {
      this.deps.end(session, { kind: "released", reason: "disconnect" }).catch(() => {});
      return;
    }
    session.window = new ReconnectWindow(graceMs, () => {
      session.window = undefined;
      this.deps
        .end(session, { kind: "expired", reason: "reconnect_window_expired" })
        .catch(() => {});
    });
    this.deps.logger.info(
      { pool: this.options.name, session: session.id, worker: session.worker.id, graceMs },
      "client gone: reconnect window open",
    );
  }
}

/** Aborts when `session` ends (pool.ts's end aborts the controller, if one was made). */
export function endedSignal(session: Session): AbortSignal {
  session.ended ??= new AbortController();
  return session.ended.signal;
}

/** A session's state on `worker` before anything holds it: no lease, no timer, usage from now. */
function unleased(worker: PoolWorker) {
  return {
    leases: 0,
    dataLeases: 0,
    carriedWebSocket: false,
    window: undefined,
    ended: undefined,
    idleTimer: undefined,
    lifetimeTimer: undefined,
    usage: usageBaseline(worker),
  };
}
