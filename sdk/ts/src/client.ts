// createHerdClient: the idiomatic face of the generated herd.v1 client. No wire code lives
// here: every call goes through the buf-generated HerdService descriptor and a Connect
// transport; this layer adds auth headers, per-call signal/timeout, typed errors, and session
// handles that release themselves.

import type { MessageInitShape } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import {
  type CallOptions,
  type Client,
  Code,
  createClient,
  type Transport,
} from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import {
  type AcquireSessionRequestSchema,
  type GetStatsResponse,
  HerdService,
  type HoldSessionRequestSchema,
  type Session,
  type SessionEvent,
  type SessionUsage,
} from "../gen/herd/v1/herd_pb.ts";
import { HerdClientError } from "./errors.ts";
import { type HeldSession, startHold } from "./hold.ts";
import { HerdSession, type ReleaseOptions, releaseIgnoringGone } from "./session.ts";

export interface HerdClientOptions {
  /** Control-plane URL, e.g. "http://127.0.0.1:7070". Ignored when `transport` is given. */
  baseUrl: string;
  /** The operator's bearer token for the control plane (control.token), sent on every call. */
  token?: string;
  /**
   * A tenant's key (instead of `token`): the control plane's bearer token, and `X-Herd-Key` in
   * every session's `headers`, so the data plane knows the tenant too.
   */
  tenantKey?: string;
  /** Wire protocol of the default transport (Node): "connect" (HTTP/1.1), "grpc" or "grpc-web". */
  protocol?: "connect" | "grpc" | "grpc-web";
  /** Any Connect transport (e.g. connect-web's in a browser); replaces the default. */
  transport?: Transport;
  /** Default timeout of unary calls (ms); none when unset. Streams never time out by default. */
  timeoutMs?: number;
}

export interface CallControl {
  signal?: AbortSignal;
  /** Deadline for this call in ms (sent to the server as the RPC timeout). */
  timeoutMs?: number;
}

export interface AcquireOptions extends CallControl {
  /** Session ID to acquire or re-attach to; omitted: the daemon generates one. */
  sessionId?: string;
  /** Longest wait in the pool's queue (ms); omitted: the pool's acquire_timeout. */
  waitMs?: number;
  labels?: Record<string, string>;
}

/** `signal` here ends the hold when it aborts (not just the opening call). */
export type HoldOptions = Omit<AcquireOptions, "timeoutMs">;

export interface WatchOptions {
  pool?: string;
  sessionId?: string;
  /** First one SNAPSHOT event per live session, then SNAPSHOT_COMPLETE. */
  snapshot?: boolean;
  /** Resume after this revision (the last one seen). */
  sinceRevision?: bigint;
  /** Also CONNECTION_OPENED / CONNECTION_CLOSED, one pair per data-plane connection (default false). */
  connectionEvents?: boolean;
  /** Ends the iteration when it aborts. */
  signal?: AbortSignal;
}

export interface TailLogsOptions {
  /** Keep streaming each later write until the session ends. */
  follow?: boolean;
  /** Ends the iteration when it aborts. */
  signal?: AbortSignal;
}

export interface HerdClient {
  /** Pins a session to a worker. `await using s = await herd.acquire("browser")` releases it. */
  acquire(pool?: string, options?: AcquireOptions): Promise<HerdSession>;
  /** Holds a session through HoldSession: it ends when the hold does (see HeldSession.signal). */
  hold(pool?: string, options?: HoldOptions): Promise<HeldSession>;
  /** Ends a session by ID. */
  release(sessionId: string, options?: ReleaseOptions): Promise<void>;
  /** Lifecycle events, live, as an async iterable. */
  watch(options?: WatchOptions): AsyncIterable<SessionEvent>;
  stats(options?: CallControl & { pool?: string }): Promise<GetStatsResponse>;
  sessions(options?: CallControl & { pool?: string }): Promise<Session[]>;
  /**
   * What a live session used so far (CPU seconds, memory peak, bytes in and out; a figure the
   * host cannot give is undefined); undefined when no such session is live.
   */
  usage(sessionId: string, options?: CallControl): Promise<SessionUsage | undefined>;
  /**
   * What the session's worker wrote to stdout and stderr since the session began, as raw
   * bytes; with `follow`, each later write until the session ends.
   */
  tailLogs(sessionId: string, options?: TailLogsOptions): AsyncIterable<Uint8Array>;
  /** The generated client underneath, for anything this layer does not cover. */
  readonly rpc: Client<typeof HerdService>;
}

export function createHerdClient(options: HerdClientOptions): HerdClient {
  const rpc = createClient(HerdService, options.transport ?? defaultTransport(options));
  if (options.token !== undefined && options.tenantKey !== undefined) {
    throw new HerdClientError(
      "createHerdClient: give token (the operator's) or tenantKey, not both",
      Code.InvalidArgument,
    );
  }
  const bearer = options.tenantKey ?? options.token;
  const key = options.tenantKey;
  const headers: Record<string, string> =
    bearer === undefined ? {} : { authorization: `Bearer ${bearer}` };
  const call = (c: CallControl = {}): CallOptions => {
    const o: CallOptions = { headers };
    if (c.signal !== undefined) o.signal = c.signal;
    const timeoutMs = c.timeoutMs ?? options.timeoutMs;
    if (timeoutMs !== undefined) o.timeoutMs = timeoutMs;
    return o;
  };
  const wrap = async <T>(p: Promise<T>): Promise<T> => {
    try {
      return await p;
    } catch (err) {
      throw HerdClientError.from(err);
    }
  };
  const release = releaseIgnoringGone((sessionId, o: ReleaseOptions) =>
    wrap(rpc.releaseSession({ sessionId, kill: o.kill ?? false }, call(o))),
  );
  const acquireRequest = (
    pool: string,
    o: AcquireOptions,
  ): MessageInitShape<typeof AcquireSessionRequestSchema> &
    MessageInitShape<typeof HoldSessionRequestSchema> => ({
    pool,
    sessionId: o.sessionId ?? "",
    labels: o.labels ?? {},
    ...(o.waitMs === undefined ? {} : { wait: durationFromMs(o.waitMs) }),
  });

  return {
    rpc,
    async acquire(pool = "", o = {}) {
      const res = await wrap(rpc.acquireSession(acquireRequest(pool, o), call(o)));
      if (res.session === undefined) {
        throw new HerdClientError("AcquireSession returned no session", Code.Internal);
      }
      return new HerdSession(res.session, release, key);
    },
    hold(pool = "", o = {}) {
      const request = acquireRequest(pool, o);
      return startHold({
        open: (reattachTo, signal) =>
          rpc.holdSession(
            reattachTo === undefined
              ? request
              : { pool: request.pool, sessionId: reattachTo, attachOnly: true },
            { headers, signal },
          ),
        signal: o.signal,
        release,
        key,
        renew: (sessionId, holdId, timeoutMs) =>
          rpc.renewHold({ sessionId, holdId }, { headers, timeoutMs }),
      });
    },
    release: (sessionId, o = {}) =>
      wrap(rpc.releaseSession({ sessionId, kill: o.kill ?? false }, call(o))).then(() => {}),
    async *watch(o = {}) {
      const req = {
        pool: o.pool ?? "",
        sessionId: o.sessionId ?? "",
        snapshot: o.snapshot ?? false,
        sinceRevision: o.sinceRevision ?? 0n,
        connectionEvents: o.connectionEvents ?? false,
      };
      // Leaving the loop early must end the call too, or the server keeps streaming to nobody.
      const loopEnded = new AbortController();
      const signal = o.signal ? AbortSignal.any([o.signal, loopEnded.signal]) : loopEnded.signal;
      try {
        yield* rpc.watchSessions(req, { headers, signal });
      } catch (err) {
        const e = HerdClientError.from(err);
        // The caller stopping the watch is an end, not a failure.
        if (signal.aborted && e.code === Code.Canceled) return;
        throw e;
      } finally {
        loopEnded.abort();
      }
    },
    stats: (o = {}) => wrap(rpc.getStats({ pool: o.pool ?? "" }, call(o))),
    sessions: async (o = {}) =>
      (await wrap(rpc.listSessions({ pool: o.pool ?? "" }, call(o)))).sessions,
    async usage(sessionId, o = {}) {
      const { sessions } = await wrap(rpc.listSessions({ pool: "" }, call(o)));
      return sessions.find((s) => s.sessionId === sessionId)?.usage;
    },
    async *tailLogs(sessionId, o = {}) {
      const loopEnded = new AbortController();
      const signal = o.signal ? AbortSignal.any([o.signal, loopEnded.signal]) : loopEnded.signal;
      try {
        for await (const piece of rpc.tailSessionLogs(
          { sessionId, follow: o.follow ?? false },
          { headers, signal },
        )) {
          yield piece.data;
        }
      } catch (err) {
        const e = HerdClientError.from(err);
        if (signal.aborted && e.code === Code.Canceled) return;
        throw e;
      } finally {
        loopEnded.abort();
      }
    },
  };
}

function defaultTransport(options: HerdClientOptions): Transport {
  const { baseUrl } = options;
  switch (options.protocol ?? "connect") {
    case "connect":
      return createConnectTransport({ baseUrl, httpVersion: "1.1" });
    case "grpc":
      return createGrpcTransport({ baseUrl });
    case "grpc-web":
      return createGrpcWebTransport({ baseUrl, httpVersion: "1.1" });
  }
}
