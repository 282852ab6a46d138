// A stand-in herd control plane for the SDKs' own checks while they cannot assume a daemon:
// a real Connect server on a real loopback port, serving the generated HerdService with the
// contract's observable behaviour (holds that end their session when the stream goes, renewals
// within a grace, revisions, snapshot/resume, the error codes) over an in-memory table of
// sessions, with no worker processes behind them. The shared scenario suite runs the SDKs
// against the real daemon; this only proves each SDK drives the generated client correctly.
//
// Invariant: a session is in `sessions` exactly while it is live; every change to the table
// appends one event with the next revision and wakes the watchers.
// Concurrency: single-threaded (Node); handlers interleave only at awaits.

import { randomUUID } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { durationFromMs, timestampFromDate, timestampNow } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ConnectRouter, type HandlerContext } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import {
  HerdService,
  HoldSessionResponseSchema,
  type Session,
  type SessionEvent,
  SessionEventSchema,
  SessionEventType,
  SessionSchema,
  type WatchSessionsRequest,
} from "../gen/herd/v1/herd_pb.ts";

export interface StubHerdOptions {
  /** Pools that exist; anything else is NOT_FOUND. */
  pools?: string[];
  /** Bearer token every call must carry; undefined: none required. */
  token?: string;
  /** How long a hold may go unrenewed. */
  heartbeatGraceMs?: number;
  /** How often a hold stream sends a heartbeat. */
  heartbeatIntervalMs?: number;
  /**
   * The daemon's reconnect window (`disconnect_grace`): a hold stream that drops keeps its
   * session this long for a HoldSession that re-attaches. 0 (default): it ends at once.
   */
  disconnectGraceMs?: number;
}

export interface StubHerd {
  readonly url: string;
  /** Live session IDs, for assertions. */
  sessionIds(): string[];
  /** Ends a session as the daemon would when its worker dies. */
  loseSession(id: string, reason: string): void;
  /** WatchSessions calls still open on the server side. */
  openWatches(): number;
  /** HoldSession streams opened for this session so far (the first, then each re-attach). */
  holdsOpened(id: string): number;
  close(): Promise<void>;
}

const validId = /^[A-Za-z0-9._:@-]{1,128}$/;

interface Hold {
  sessionId: string;
  expiresAt: number;
  end: AbortController;
}

export async function startStubHerd(options: StubHerdOptions = {}): Promise<StubHerd> {
  const pools = options.pools ?? ["default", "browser"];
  const graceMs = options.heartbeatGraceMs ?? 1_000;
  const heartbeatMs = options.heartbeatIntervalMs ?? 200;
  const disconnectGraceMs = options.disconnectGraceMs ?? 0;
  const holdsOpened = new Map<string, number>();
  const sessions = new Map<string, Session>();
  const holds = new Map<string, Hold>();
  const events: SessionEvent[] = [];
  let wake: () => void = () => {};
  let changed = new Promise<void>((resolve) => {
    wake = resolve;
  });
  let workers = 0;

  let openWatches = 0;
  async function* watch(
    req: WatchSessionsRequest,
    ctx: HandlerContext,
  ): AsyncGenerator<SessionEvent> {
    const matches = (e: SessionEvent) =>
      (req.pool === "" || e.pool === req.pool) &&
      (req.sessionId === "" || e.sessionId === req.sessionId);
    if (req.sinceRevision > BigInt(events.length)) {
      throw new ConnectError(`revision ${req.sinceRevision} is in the future`, Code.OutOfRange);
    }
    // Index into `events` of the next event to send (revision = index + 1).
    let next = Number(req.sinceRevision);
    if (req.snapshot) {
      next = events.length;
      for (const s of sessions.values()) {
        const e = create(SessionEventSchema, {
          revision: BigInt(next),
          type: SessionEventType.SNAPSHOT,
          session: s,
          sessionId: s.sessionId,
          pool: s.pool,
          workerId: s.workerId,
          time: timestampNow(),
        });
        if (matches(e)) yield e;
      }
      yield create(SessionEventSchema, {
        revision: BigInt(next),
        type: SessionEventType.SNAPSHOT_COMPLETE,
        time: timestampNow(),
      });
    } else if (req.sinceRevision === 0n) {
      next = events.length;
    }
    while (!ctx.signal.aborted) {
      while (next < events.length) {
        const e = events[next++]!;
        if (matches(e)) yield e;
      }
      await Promise.race([changed, sleep(60_000, ctx.signal)]);
    }
  }

  const emit = (type: SessionEventType, s: Session, reason = ""): void => {
    events.push(
      create(SessionEventSchema, {
        revision: BigInt(events.length + 1),
        type,
        session: s,
        sessionId: s.sessionId,
        pool: s.pool,
        workerId: s.workerId,
        workerPid: s.workerPid,
        reason,
        time: timestampNow(),
      }),
    );
    const w = wake;
    changed = new Promise<void>((resolve) => {
      wake = resolve;
    });
    w();
  };

  const end = (id: string, type: SessionEventType, reason: string): Session | undefined => {
    const s = sessions.get(id);
    if (s === undefined) return undefined;
    sessions.delete(id);
    for (const [holdId, h] of holds) {
      if (h.sessionId === id) {
        holds.delete(holdId);
        h.end.abort(new ConnectError(`session ${id} ended: ${reason}`, Code.FailedPrecondition));
      }
    }
    emit(type, s, reason);
    return s;
  };

  const checkAuth = (ctx: HandlerContext): void => {
    if (options.token === undefined) return;
    if (ctx.requestHeader.get("authorization") !== `Bearer ${options.token}`) {
      throw new ConnectError("missing or bad bearer token", Code.Unauthenticated);
    }
  };

  const acquire = (pool: string, sessionId: string, labels: Record<string, string>): Session => {
    const poolName = pool === "" ? (pools[0] ?? "default") : pool;
    if (!pools.includes(poolName)) {
      throw new ConnectError(`unknown pool "${poolName}"`, Code.NotFound);
    }
    if (sessionId !== "" && !validId.test(sessionId)) {
      throw new ConnectError(
        "session_id must be 1-128 characters of [A-Za-z0-9._:@-]",
        Code.InvalidArgument,
      );
    }
    const id = sessionId === "" ? randomUUID() : sessionId;
    const existing = sessions.get(id);
    if (existing !== undefined) return existing;
    workers += 1;
    const s = create(SessionSchema, {
      sessionId: id,
      pool: poolName,
      workerId: `${poolName}-${workers}`,
      workerPid: process.pid,
      dataPlaneUrl: "http://127.0.0.1:9",
      token: `token-${id}`,
      createdAt: timestampNow(),
      lastActiveAt: timestampNow(),
      labels,
    });
    sessions.set(id, s);
    emit(SessionEventType.SESSION_ACQUIRED, s);
    return s;
  };

  const routes = (router: ConnectRouter) =>
    router.service(HerdService, {
      acquireSession(req, ctx) {
        checkAuth(ctx);
        return { session: acquire(req.pool, req.sessionId, req.labels) };
      },
      releaseSession(req, ctx) {
        checkAuth(ctx);
        const s = end(req.sessionId, SessionEventType.SESSION_RELEASED, "released");
        if (s === undefined) {
          throw new ConnectError(`unknown session "${req.sessionId}"`, Code.NotFound);
        }
        return { session: s };
      },
      async *holdSession(req, ctx) {
        checkAuth(ctx);
        if (req.attachOnly && !sessions.has(req.sessionId)) {
          throw req.sessionId === ""
            ? new ConnectError("attach_only needs a session_id", Code.InvalidArgument)
            : new ConnectError(`no live session "${req.sessionId}"`, Code.NotFound);
        }
        const s = acquire(req.pool, req.sessionId, req.labels);
        holdsOpened.set(s.sessionId, (holdsOpened.get(s.sessionId) ?? 0) + 1);
        const holdId = randomUUID();
        const hold: Hold = {
          sessionId: s.sessionId,
          expiresAt: Date.now() + graceMs,
          end: new AbortController(),
        };
        holds.set(holdId, hold);
        const message = (kind: MessageInitShape<typeof HoldSessionResponseSchema>["kind"]) =>
          create(HoldSessionResponseSchema, {
            kind,
            holdId,
            heartbeatGrace: durationFromMs(graceMs),
          });
        try {
          yield message({ case: "session", value: s });
          for (;;) {
            await sleep(heartbeatMs, AbortSignal.any([ctx.signal, hold.end.signal]));
            if (hold.end.signal.aborted) throw hold.end.signal.reason;
            if (ctx.signal.aborted) return;
            if (Date.now() > hold.expiresAt) {
              end(s.sessionId, SessionEventType.SESSION_EXPIRED, "hold_expired");
              throw new ConnectError("hold not renewed within the grace", Code.DeadlineExceeded);
            }
            yield message({
              case: "heartbeat",
              value: {
                time: timestampNow(),
                holdExpiresAt: timestampFromDate(new Date(hold.expiresAt)),
              },
            });
          }
        } finally {
          // The dead-man's switch: whatever ended the stream ends the session, at once or
          // once the reconnect window passes without a new hold on it.
          if (holds.delete(holdId)) {
            const unheld = () => ![...holds.values()].some((h) => h.sessionId === s.sessionId);
            const release = (reason: string) => {
              if (sessions.get(s.sessionId) === s && unheld()) {
                end(s.sessionId, SessionEventType.SESSION_RELEASED, reason);
              }
            };
            if (disconnectGraceMs > 0) {
              setTimeout(() => release("reconnect_window_expired"), disconnectGraceMs).unref();
            } else {
              release("hold_closed");
            }
          }
        }
      },
      renewHold(req, ctx) {
        checkAuth(ctx);
        const hold = holds.get(req.holdId);
        if (hold === undefined || hold.sessionId !== req.sessionId) {
          throw new ConnectError(`no hold "${req.holdId}" on "${req.sessionId}"`, Code.NotFound);
        }
        hold.expiresAt = Date.now() + graceMs;
        return { holdExpiresAt: timestampFromDate(new Date(hold.expiresAt)) };
      },
      async *watchSessions(req, ctx) {
        checkAuth(ctx);
        openWatches++;
        try {
          yield* watch(req, ctx);
        } finally {
          openWatches--;
        }
      },
      getStats(req, ctx) {
        checkAuth(ctx);
        if (req.pool !== "" && !pools.includes(req.pool)) {
          throw new ConnectError(`unknown pool "${req.pool}"`, Code.NotFound);
        }
        const selected = req.pool === "" ? pools : [req.pool];
        return {
          pools: selected.map((name) => {
            const busy = [...sessions.values()].filter((s) => s.pool === name).length;
            return { name, workersTotal: busy, workersBusy: busy, sessions: busy, min: 0, max: 5 };
          }),
          node: { memoryTotalBytes: 1n << 30n, memoryAvailableBytes: 1n << 29n, cpuIdle: 0.5 },
        };
      },
      listSessions(req, ctx) {
        checkAuth(ctx);
        return {
          sessions: [...sessions.values()].filter((s) => req.pool === "" || s.pool === req.pool),
        };
      },
    });

  const server: Server = createServer(connectNodeAdapter({ routes }));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    sessionIds: () => [...sessions.keys()],
    openWatches: () => openWatches,
    holdsOpened: (id) => holdsOpened.get(id) ?? 0,
    loseSession: (id, reason) => {
      end(id, SessionEventType.SESSION_LOST, reason);
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const h of holds.values())
          h.end.abort(new ConnectError("stub closing", Code.Unavailable));
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}
