// herd.v1.HerdService: each handler only translates between messages and the SessionDirectory.
// Session state lives in the pool; the only state here is the holds (holds.ts) and the
// request_ids of acquires (request-ids.ts). Every handler acts for its caller (CALLER, set by
// the auth interceptor): a tenant's key sees only its own sessions — another's is NOT_FOUND, in
// the same words as an unknown one — and acquires through the tenants (core's Tenancy). Errors
// are thrown as HerdError and translated by the interceptor in interceptors.ts.

import { create } from "@bufbuild/protobuf";
import { durationFromMs, durationMs, timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import {
  type HerdService,
  HoldSessionResponseSchema,
  NodeState,
  type SessionEvent,
} from "../../gen/herd/v1/herd_pb.ts";
import type {
  AcquireOptions,
  Caller,
  Logger,
  SessionDirectory,
  SessionInfo,
  SessionLogSource,
  Tenancy,
  Tracer,
} from "../core/index.ts";
import {
  HerdError,
  type NodeDrain,
  notYours,
  PEER_TENANT_HEADER,
  sees,
  validateSessionId,
  withoutStderr,
} from "../core/index.ts";
import { type CallerLimits, countedStreams } from "./caller-limits.ts";
import { type HoldEnd, HoldRegistry } from "./holds.ts";
import { CALLER, PEER_NODE } from "./interceptors.ts";
import { logStream } from "./log-stream.ts";
import type { ControlPlaneMetrics } from "./metrics.ts";
import { RequestIds, validateRequestId } from "./request-ids.ts";
import {
  eventToProto,
  sessionToProto,
  snapshotCompleteEvent,
  snapshotEvent,
  statsToProto,
} from "./to-proto.ts";

export interface HerdServiceDeps {
  directory: SessionDirectory;
  dataPlaneUrl: string;
  defaultPool: string;
  logger: Logger;
  metrics: ControlPlaneMetrics;
  /** Aborts when the server shuts down: every stream ends with UNAVAILABLE. */
  shutdown: AbortSignal;
  /** Heartbeat period on hold streams (default 5 s, and at most a third of the grace). */
  heartbeatMs?: number;
  /** GetStats' instance_id: new on every start, so resuming watchers can tell a restart. */
  instanceId: string;
  /** This node's drain (DrainNode, GetStats' state); without it DrainNode fails. */
  node?: NodeControl;
  /** Where TailSessionLogs reads; without it the RPC fails failed_precondition. */
  logs?: SessionLogSource;
  /** What one caller may hold open: its WatchSessions and HoldSession streams. */
  limits: CallerLimits;
  /** The tenants (a `tenants` section): a tenant key's calls see its own sessions only. */
  tenancy?: Tenancy;
  /** Set when tracing is on: each AcquireSession call is a span. */
  tracer?: Tracer;
}

export interface NodeControl {
  drain: NodeDrain;
  /** Sessions running on this node (a cluster directory also lists other nodes'). */
  localSessions(): number;
  /** Cluster mode: this node's name (GetStats' cluster_node). */
  clusterNode?: string;
  /** Hands the node to a new process (src/cli/restart.ts); without it RestartNode fails. */
  restart?(): Promise<{ pid: number; previousPid: number; sessions: number }>;
}

const MAX_LABELS = 32;
/** google.protobuf.Duration's own bound on seconds (about 10,000 years). */
const MAX_DURATION_SECONDS = 315_576_000_000n;

function checkLabels(labels: Record<string, string>): Record<string, string> {
  const entries = Object.entries(labels);
  if (entries.length > MAX_LABELS) {
    throw new HerdError("invalid_argument", `labels: at most ${MAX_LABELS}, got ${entries.length}`);
  }
  for (const [k, v] of entries) {
    if (!/^[A-Za-z0-9._/-]{1,63}$/.test(k)) {
      throw new HerdError(
        "invalid_argument",
        `labels: key ${JSON.stringify(k.slice(0, 70))} must be 1-63 of A-Z a-z 0-9 . _ / -`,
      );
    }
    if (v.length > 256) {
      throw new HerdError("invalid_argument", `labels.${k}: value longer than 256 characters`);
    }
  }
  return labels;
}

function shuttingDown(): HerdError {
  return new HerdError("unavailable", "herd is shutting down");
}

function holdEndError(sessionId: string, why: HoldEnd): HerdError {
  switch (why.kind) {
    case "shutdown":
      return shuttingDown();
    case "not_renewed":
      return new HerdError(
        "deadline_exceeded",
        `hold on session ${sessionId} was not renewed within its heartbeat_grace; the session has ended`,
      );
    case "client_gone":
      return new HerdError("cancelled", "the holder went away; the session has ended");
    case "session_ended": {
      const end = why.end;
      const how = !end
        ? "ended"
        : end.kind === "released"
          ? "was released"
          : // The holder gets the exit, not the worker's stderr (WatchSessions has it).
            `${end.kind === "expired" ? "expired" : "was lost"}: ${withoutStderr(end.reason)}`;
      return new HerdError("failed_precondition", `session ${sessionId} ${how}`);
    }
  }
}

/** A call only control.token's holder may make: a tenant key gets PERMISSION_DENIED. */
function operatorOnly(ctx: Pick<HandlerContext, "values">, rpc: string): void {
  if (ctx.values.get(CALLER).kind !== "operator") {
    throw new HerdError("permission_denied", `${rpc} is the operator's call (control.token)`);
  }
}

export function herdService(deps: HerdServiceDeps): ServiceImpl<typeof HerdService> {
  const { directory, dataPlaneUrl, metrics, shutdown, instanceId } = deps;
  const holds = new HoldRegistry(directory, deps.logger);
  const requestIds = new RequestIds((id) => directory.lookup(id) !== undefined);
  const { tenancy } = deps;

  /** The live session `id` if the caller sees it; another's is NOT_FOUND, as an unknown one. */
  function visible(caller: Caller, id: string): SessionInfo | undefined {
    const live = directory.lookup(id);
    return live !== undefined && sees(caller, live) ? live : undefined;
  }

  function mustSee(caller: Caller, id: string): SessionInfo {
    const live = visible(caller, id);
    if (live === undefined) throw notYours(id);
    return live;
  }

  /** The pools a caller may use (undefined: all). */
  function poolsOf(caller: Caller): readonly string[] | undefined {
    return caller.kind === "tenant" ? tenancy?.pools(caller.name) : undefined;
  }

  /**
   * A google.protobuf.Duration as milliseconds, refusing what the type itself forbids (nanos
   * outside ±999,999,999 or of the other sign, seconds beyond ±10,000 years) and negatives.
   * Long waits are fine: the pool's timer re-arms (long-timer.ts).
   */
  function waitMs(wait: Parameters<typeof durationMs>[0]): number {
    const { seconds, nanos } = wait;
    const bad = (why: string) => new HerdError("invalid_argument", `wait: ${why}`);
    if (nanos < -999_999_999 || nanos > 999_999_999) {
      throw bad(`nanos ${nanos} is out of range (-999999999..999999999)`);
    }
    if ((seconds > 0n && nanos < 0) || (seconds < 0n && nanos > 0)) {
      throw bad(`seconds ${seconds} and nanos ${nanos} have different signs`);
    }
    if (seconds > MAX_DURATION_SECONDS || seconds < -MAX_DURATION_SECONDS) {
      throw bad(
        `seconds ${seconds} is out of range (±${MAX_DURATION_SECONDS}, about 10,000 years)`,
      );
    }
    if (seconds < 0n || nanos < 0) throw bad("must not be negative");
    return durationMs(wait);
  }

  /** An empty pool means: the pool of the live session with this id, else the default. */
  function poolFor(pool: string, sessionId: string): string {
    if (pool !== "") return pool;
    const live = sessionId === "" ? undefined : directory.lookup(sessionId);
    return live?.pool ?? deps.defaultPool;
  }

  async function acquire(
    req: {
      pool: string;
      sessionId: string;
      wait?: Parameters<typeof durationMs>[0];
      labels: Record<string, string>;
      requestId?: string;
    },
    signal: AbortSignal,
    caller: Caller,
    /** A peer node's acquire for a tenant it has admitted (PEER_TENANT_HEADER). */
    forTenant?: string,
  ): Promise<SessionInfo> {
    if (shutdown.aborted) throw shuttingDown();
    const given = req.sessionId === "" ? undefined : validateSessionId(req.sessionId);
    const opts: AcquireOptions = { signal, labels: checkLabels(req.labels) };
    if (req.wait) opts.waitMs = waitMs(req.wait);
    if (forTenant !== undefined) opts.tenant = forTenant;
    const requestId = validateRequestId(req.requestId ?? "");
    const who = caller.kind === "tenant" ? `tenant:${caller.name}` : "operator";
    const retry = requestId === "" ? undefined : requestIds.take(who, requestId, given);
    const sessionId = retry?.sessionId ?? given;
    try {
      // An empty pool follows a live session of this id, but only one the caller sees.
      const seen = sessionId !== undefined && visible(caller, sessionId) ? sessionId : "";
      const pool = poolFor(req.pool, seen);
      const started = performance.now();
      const session =
        caller.kind === "tenant" && tenancy
          ? await tenancy.acquire(caller.name, pool, sessionId, opts)
          : await directory.acquire(pool, sessionId, opts);
      metrics.observeAcquire(session.pool, (performance.now() - started) / 1000);
      return session;
    } finally {
      if (retry) requestIds.settle(who, requestId, retry);
    }
  }

  /**
   * HoldSession's `attach_only`: the live session or NOT_FOUND, never a new one. Lookup and the
   * hold's lease that follows are synchronous, so the session cannot end in between.
   */
  function attach(req: { pool: string; sessionId: string }, caller: Caller): SessionInfo {
    if (shutdown.aborted) throw shuttingDown();
    if (req.sessionId === "") {
      throw new HerdError("invalid_argument", "attach_only needs a session_id");
    }
    const id = validateSessionId(req.sessionId);
    const live = visible(caller, id);
    if (!live) {
      throw new HerdError("not_found", `no live session ${JSON.stringify(id)} to re-attach to`);
    }
    if (req.pool !== "" && req.pool !== live.pool) {
      throw new HerdError(
        "failed_precondition",
        `session ${JSON.stringify(id)} lives in pool ${JSON.stringify(live.pool)}, not ${JSON.stringify(req.pool)}`,
      );
    }
    directory.touch(id);
    return live;
  }

  function checkPool(pool: string, caller: Caller): string | undefined {
    if (pool === "") return undefined;
    directory.poolOptions(pool); // throws not_found
    const allowed = poolsOf(caller);
    if (allowed !== undefined && !allowed.includes(pool)) {
      throw new HerdError(
        "permission_denied",
        `this key may not use pool ${JSON.stringify(pool)} (its pools: ${allowed.join(", ")})`,
      );
    }
    return pool;
  }

  const service: ServiceImpl<typeof HerdService> = {
    async acquireSession(req, ctx) {
      const forTenant =
        ctx.values.get(PEER_NODE) === undefined
          ? undefined
          : (ctx.requestHeader.get(PEER_TENANT_HEADER) ?? undefined);
      const span = deps.tracer?.acquire({
        traceparent: ctx.requestHeader.get("traceparent") ?? undefined,
        tracestate: ctx.requestHeader.get("tracestate") ?? undefined,
      });
      let session: SessionInfo;
      try {
        session = await acquire(req, ctx.signal, ctx.values.get(CALLER), forTenant);
      } catch (error) {
        span?.end({ error });
        throw error;
      }
      span?.end({ session });
      return { session: sessionToProto(session, dataPlaneUrl) };
    },

    async releaseSession(req, ctx) {
      const id = mustSee(ctx.values.get(CALLER), validateSessionId(req.sessionId)).id;
      const session = await directory.release(id, { kill: req.kill });
      return { session: sessionToProto(session, dataPlaneUrl) };
    },

    async *holdSession(req, ctx) {
      const caller = ctx.values.get(CALLER);
      const session = req.attachOnly ? attach(req, caller) : await acquire(req, ctx.signal, caller);
      const graceMs = directory.poolOptions(session.pool).heartbeatGraceMs;
      const hold = holds.open(session, graceMs, { client: ctx.signal, shutdown });
      const heartbeatMs = Math.max(
        10,
        Math.min(deps.heartbeatMs ?? 5000, graceMs > 0 ? graceMs / 3 : Number.POSITIVE_INFINITY),
      );
      const common = { holdId: hold.id, heartbeatGrace: durationFromMs(graceMs) };
      try {
        if (hold.endedWith) throw holdEndError(session.id, hold.endedWith);
        yield create(HoldSessionResponseSchema, {
          ...common,
          kind: { case: "session", value: sessionToProto(session, dataPlaneUrl) },
        });
        for (;;) {
          const ended = await hold.wait(heartbeatMs);
          if (ended) throw holdEndError(session.id, ended);
          const expires = hold.expiresAt;
          yield create(HoldSessionResponseSchema, {
            ...common,
            kind: {
              case: "heartbeat",
              value: {
                time: timestampFromDate(new Date()),
                holdExpiresAt: expires && timestampFromDate(expires),
              },
            },
          });
        }
      } finally {
        // The stream is over however it ended: a holder that stops reading is a holder gone.
        hold.end({ kind: "client_gone" });
      }
    },

    async renewHold(req, ctx) {
      const caller = ctx.values.get(CALLER);
      if (caller.kind !== "operator") mustSee(caller, req.sessionId);
      const expires = holds.renew(req.sessionId, req.holdId);
      return { holdExpiresAt: expires && timestampFromDate(expires) };
    },

    async *watchSessions(req, ctx) {
      if (shutdown.aborted) throw shuttingDown();
      const caller = ctx.values.get(CALLER);
      const pool = checkPool(req.pool, caller);
      const tenant = caller.kind === "tenant" ? caller.name : undefined;
      const sessionId = req.sessionId === "" ? undefined : validateSessionId(req.sessionId);
      // Subscribe and snapshot in one synchronous step: nothing can happen in between, so the
      // snapshot is exactly the state at `snapshotRevision` and no event is lost or doubled.
      if (req.sinceRevision > BigInt(Number.MAX_SAFE_INTEGER)) {
        throw new HerdError(
          "out_of_range",
          `since_revision ${req.sinceRevision} is beyond any revision`,
        );
      }
      const opts = {
        filter: { pool, sessionId, tenant, connectionEvents: req.connectionEvents },
        sinceRevision: req.sinceRevision > 0n ? Number(req.sinceRevision) : undefined,
      };
      // A cluster's watch with a snapshot needs no replay (the snapshot reflects every event up
      // to its revision) and delivers only later events, so none is skipped below: node-local
      // ones there carry the revision last read, not one of their own.
      const cluster = directory.watch?.(
        req.snapshot ? { ...opts, sinceRevision: undefined } : opts,
      );
      const { events: sub, revision: snapshotRevision } = cluster ?? {
        events: directory.subscribe(opts),
        revision: directory.revision(),
      };
      const snapshot: SessionEvent[] = [];
      if (req.snapshot) {
        for (const s of directory.sessions(pool)) {
          if ((sessionId === undefined || s.id === sessionId) && sees(caller, s)) {
            snapshot.push(snapshotEvent(s, snapshotRevision, dataPlaneUrl));
          }
        }
        snapshot.push(snapshotCompleteEvent(snapshotRevision));
      }
      const stop = () => sub.close();
      ctx.signal.addEventListener("abort", stop);
      shutdown.addEventListener("abort", stop);
      try {
        yield* snapshot;
        for await (const event of sub) {
          // With a snapshot, events it already reflects are skipped.
          if (req.snapshot && !cluster && event.revision <= snapshotRevision) continue;
          yield eventToProto(event, dataPlaneUrl);
        }
        if (shutdown.aborted) throw shuttingDown();
      } finally {
        ctx.signal.removeEventListener("abort", stop);
        shutdown.removeEventListener("abort", stop);
        sub.close();
      }
    },

    async getStats(req, ctx) {
      const caller = ctx.values.get(CALLER);
      const all = directory.stats(checkPool(req.pool, caller));
      const allowed = poolsOf(caller);
      if (caller.kind === "tenant") {
        // A tenant sees its own row and its pools, nothing of other nodes or tenants.
        const pools = all.pools.filter((p) => allowed?.includes(p.name));
        return statsToProto({ pools, node: all.node }, instanceId, tenancy?.usage(caller.name));
      }
      const stats = statsToProto(all, instanceId, tenancy?.usage());
      const node = deps.node;
      if (node === undefined) return stats;
      stats.state = node.drain.draining ? NodeState.DRAINING : NodeState.SERVING;
      stats.clusterNode = node.clusterNode ?? "";
      return stats;
    },

    async drainNode(_req, ctx) {
      operatorOnly(ctx, "DrainNode");
      const node = deps.node;
      if (node === undefined)
        throw new HerdError("failed_precondition", "this server cannot drain");
      // The operator's call: another node (a forwarded call) has no business stopping this one.
      if (ctx.requestHeader.has("x-herd-peer")) {
        throw new HerdError(
          "failed_precondition",
          "DrainNode is the operator's call, not a peer's",
        );
      }
      const started = node.drain.begin();
      const state = node.drain.state;
      return {
        started,
        sessions: node.localSessions(),
        deadline:
          state.kind === "draining" ? timestampFromDate(new Date(state.deadline)) : undefined,
      };
    },

    async restartNode(_req, ctx) {
      operatorOnly(ctx, "RestartNode");
      const restart = deps.node?.restart;
      if (restart === undefined) {
        throw new HerdError("failed_precondition", "this server cannot restart in place");
      }
      if (ctx.requestHeader.has("x-herd-peer")) {
        throw new HerdError(
          "failed_precondition",
          "RestartNode is the operator's call, not a peer's",
        );
      }
      return restart();
    },

    async *tailSessionLogs(req, ctx) {
      if (shutdown.aborted) throw shuttingDown();
      const id = validateSessionId(req.sessionId);
      const caller = ctx.values.get(CALLER);
      if (caller.kind !== "operator") mustSee(caller, id);
      if (!deps.logs) {
        throw new HerdError("failed_precondition", "this server keeps no session logs");
      }
      for await (const data of logStream(
        deps.logs.logs(id),
        req.follow,
        AbortSignal.any([ctx.signal, shutdown]),
      )) {
        yield { data };
      }
    },

    async listSessions(req, ctx) {
      const caller = ctx.values.get(CALLER);
      const sessions = directory
        .sessions(checkPool(req.pool, caller))
        .filter((s) => sees(caller, s));
      return { sessions: sessions.map((s) => sessionToProto(s, dataPlaneUrl)) };
    },
  };
  return countedStreams(service, deps.limits);
}
