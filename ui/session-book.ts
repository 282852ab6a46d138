// What the page knows about sessions, built from WatchSessions events alone (ListSessions only
// refreshes fields of sessions the book already holds live). No DOM here.
//
// Invariants: `revision` is the highest daemon revision applied, so a watch resumed with
// since_revision = `revision` misses nothing and repeats nothing (events at or below it are
// ignored). Revisions belong to one daemon run (`instanceId`): when that changes, every live
// row ends as "gone" and the next watch starts over with a snapshot. Ended rows are kept, up
// to `endedLimit` (oldest dropped first), so a lost session's reason stays visible.
// Single-threaded (the page's event loop): every method runs to completion.

import {
  type Session,
  type SessionEvent,
  SessionEventType,
  type WorkerExit,
} from "../gen/herd/v1/herd_pb.ts";

export type SessionState = "live" | "released" | "expired" | "lost" | "gone";

export interface HistoryEntry {
  revision: bigint;
  /** e.g. "SESSION_LOST", "CONNECTION_OPENED", "WORKER_STOPPED". */
  type: string;
  time?: Date;
  reason: string;
  workerPid: number;
  exit?: WorkerExit;
}

export interface SessionRow {
  id: string;
  pool: string;
  workerId: string;
  workerPid: number;
  createdAt?: Date;
  lastActiveAt?: Date;
  connections: number;
  labels: Record<string, string>;
  /** Whose session it is: a tenant's name, "" for the operator's. */
  tenant: string;
  state: SessionState;
  endedAt?: Date;
  /** Why it ended ("idle", "exit code 1", "daemon restarted", ...); empty while live. */
  reason: string;
  /** How its worker ended, for a lost session. */
  exit?: WorkerExit;
  history: HistoryEntry[];
}

const ENDS: Partial<Record<SessionEventType, SessionState>> = {
  [SessionEventType.SESSION_RELEASED]: "released",
  [SessionEventType.SESSION_EXPIRED]: "expired",
  [SessionEventType.SESSION_LOST]: "lost",
};

const WORKER_EVENTS = new Set([
  SessionEventType.WORKER_STARTED,
  SessionEventType.WORKER_STOPPED,
  SessionEventType.WORKER_UNHEALTHY,
]);

function historyEntry(ev: SessionEvent): HistoryEntry {
  return {
    revision: ev.revision,
    type: SessionEventType[ev.type] ?? String(ev.type),
    time: toDate(ev.time),
    reason: ev.reason,
    workerPid: ev.workerPid,
    exit: ev.exit,
  };
}

const toDate = (t: { seconds: bigint; nanos: number } | undefined): Date | undefined =>
  t && new Date(Number(t.seconds) * 1000 + Math.floor(t.nanos / 1e6));

export class SessionBook {
  /** The daemon run the revisions belong to (GetStats' instance_id); "" before the first. */
  instanceId = "";
  revision = 0n;
  readonly rows = new Map<string, SessionRow>();
  private snapshotIds: Set<string> | undefined;

  constructor(
    private readonly endedLimit = 500,
    private readonly historyLimit = 100,
  ) {}

  /**
   * Called before each (re)connect with the daemon's current instance id. Returns whether the
   * watch can resume from `revision`; if not, the caller watches with a snapshot.
   */
  connect(instanceId: string): boolean {
    if (instanceId === this.instanceId && this.revision > 0n) return true;
    if (this.instanceId !== "" && instanceId !== this.instanceId) {
      this.endLive("gone", "daemon restarted");
    }
    this.instanceId = instanceId;
    this.revision = 0n;
    return false;
  }

  /** The daemon no longer has the history to resume from (OUT_OF_RANGE): start over. */
  forgetRevision(): void {
    this.revision = 0n;
  }

  /** Applies one event; returns whether anything shown changed. */
  apply(ev: SessionEvent): boolean {
    if (ev.type === SessionEventType.SNAPSHOT) {
      this.snapshotIds ??= new Set();
      if (ev.revision > this.revision) this.revision = ev.revision;
      if (!ev.session) return false;
      this.snapshotIds.add(ev.session.sessionId);
      this.upsertLive(ev.session);
      return true;
    }
    if (ev.type === SessionEventType.SNAPSHOT_COMPLETE) {
      if (ev.revision > this.revision) this.revision = ev.revision;
      const seen = this.snapshotIds ?? new Set();
      this.snapshotIds = undefined;
      return this.endLive("gone", "ended while the page was disconnected", seen) > 0;
    }
    if (ev.revision <= this.revision) return false;
    this.revision = ev.revision;
    const entry = historyEntry(ev);
    if (WORKER_EVENTS.has(ev.type)) {
      let changed = false;
      for (const row of this.rows.values()) {
        if (row.workerId === ev.workerId && (row.state === "live" || row.state === "lost")) {
          this.record(row, entry);
          changed = true;
        }
      }
      return changed;
    }
    const id = ev.sessionId || ev.session?.sessionId;
    if (!id) return false;
    let row = ev.session ? this.upsert(ev.session) : this.rows.get(id);
    if (!row) {
      row = this.newRow(id, ev.pool, ev.workerId, ev.workerPid);
      this.rows.set(id, row);
    }
    this.record(row, entry);
    const end = ENDS[ev.type];
    if (end) {
      row.state = end;
      row.endedAt = entry.time ?? new Date();
      row.reason = ev.reason;
      row.exit = ev.exit;
      this.pruneEnded();
    } else if (ev.type === SessionEventType.SESSION_ACQUIRED) {
      // An ID can be acquired again after it ended: it is a new life of that session.
      row.state = "live";
      row.reason = "";
      row.exit = undefined;
      row.endedAt = undefined;
    }
    return true;
  }

  /**
   * An event from before the current snapshot, replayed from the daemon's retained history so
   * that a page opened late still shows what happened: it adds to histories, and sessions that
   * ended before the snapshot become ended rows. It never changes a session the snapshot holds
   * live, nor `revision`. Returns whether anything shown changed.
   */
  backfill(ev: SessionEvent): boolean {
    if (ev.type === SessionEventType.SNAPSHOT || ev.type === SessionEventType.SNAPSHOT_COMPLETE) {
      return false;
    }
    const entry = historyEntry(ev);
    if (WORKER_EVENTS.has(ev.type)) {
      let changed = false;
      for (const row of this.rows.values()) {
        if (row.workerId === ev.workerId && (row.state === "live" || row.state === "lost")) {
          changed = this.insert(row, entry) || changed;
        }
      }
      return changed;
    }
    const id = ev.sessionId || ev.session?.sessionId;
    if (!id) return false;
    let row = this.rows.get(id);
    if (!row) {
      row = this.newRow(id, ev.pool, ev.workerId, ev.workerPid);
      row.state = "gone";
      row.reason = "ended before the page opened";
      this.rows.set(id, row);
    }
    const changed = this.insert(row, entry);
    if (row.state === "live" || row.history.at(-1) !== entry) return changed;
    // The newest known event of an ended session says how it ended.
    if (ev.session) {
      const { state, reason, exit, endedAt } = row;
      Object.assign(this.upsert(ev.session), { state, reason, exit, endedAt });
    }
    const end = ENDS[ev.type];
    if (end) {
      row.state = end;
      row.reason = ev.reason;
      row.exit = ev.exit;
      row.endedAt = entry.time;
      this.pruneEnded();
    }
    return true;
  }

  /** Fresh fields (last activity, connections) for sessions the book holds live. */
  refresh(sessions: readonly Session[]): void {
    for (const s of sessions) {
      const row = this.rows.get(s.sessionId);
      if (row?.state === "live") this.upsert(s);
    }
  }

  live(): SessionRow[] {
    return [...this.rows.values()].filter((r) => r.state === "live");
  }

  private upsertLive(s: Session): void {
    const row = this.upsert(s);
    row.state = "live";
    row.reason = "";
    row.exit = undefined;
    row.endedAt = undefined;
  }

  private upsert(s: Session): SessionRow {
    let row = this.rows.get(s.sessionId);
    if (!row) {
      row = this.newRow(s.sessionId, s.pool, s.workerId, s.workerPid);
      this.rows.set(s.sessionId, row);
    }
    row.pool = s.pool;
    row.workerId = s.workerId;
    row.workerPid = s.workerPid;
    row.createdAt = toDate(s.createdAt);
    row.lastActiveAt = toDate(s.lastActiveAt);
    row.connections = s.connections;
    row.labels = { ...s.labels };
    row.tenant = s.tenant;
    return row;
  }

  private newRow(id: string, pool: string, workerId: string, workerPid: number): SessionRow {
    return {
      id,
      pool,
      workerId,
      workerPid,
      connections: 0,
      labels: {},
      tenant: "",
      state: "live",
      reason: "",
      history: [],
    };
  }

  /** Adds an older entry in revision order, once; returns whether it was new. */
  private insert(row: SessionRow, entry: HistoryEntry): boolean {
    if (row.history.some((h) => h.revision === entry.revision)) return false;
    row.history.push(entry);
    row.history.sort((a, b) => (a.revision < b.revision ? -1 : a.revision > b.revision ? 1 : 0));
    if (row.history.length > this.historyLimit) row.history.shift();
    return true;
  }

  private record(row: SessionRow, entry: HistoryEntry): void {
    row.history.push(entry);
    if (row.history.length > this.historyLimit) row.history.shift();
  }

  /** Ends every live row not in `keep`; returns how many. */
  private endLive(state: SessionState, reason: string, keep = new Set<string>()): number {
    let n = 0;
    for (const row of this.rows.values()) {
      if (row.state !== "live" || keep.has(row.id)) continue;
      row.state = state;
      row.reason = reason;
      row.endedAt = new Date();
      n++;
    }
    this.pruneEnded();
    return n;
  }

  private pruneEnded(): void {
    const ended = [...this.rows.values()].filter((r) => r.state !== "live");
    ended.sort((a, b) => (a.endedAt?.getTime() ?? 0) - (b.endedAt?.getTime() ?? 0));
    for (const row of ended.slice(0, Math.max(0, ended.length - this.endedLimit))) {
      this.rows.delete(row.id);
    }
  }
}
