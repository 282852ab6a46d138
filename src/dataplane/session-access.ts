// From a routed request to a live session with a data lease held on it: SessionAccess, the one
// contract both forwarding paths open their connections through. open() is the whole job
// (lookup, cluster-wide find, acquire; errors to answer); known() is its synchronous case,
// which the fast path tries first on every request because it must decide within one read
// whether to serve a request or hand it to node:http, without waiting, answering or starting
// work it might then do twice (see fast/fast-connection.ts).
//
// Invariant: traffic is proxied only while it holds a data lease (its connection's, taken by
// the caller's `take`; see client-connections.ts). Token checks come before any acquire, and with tokens required an unknown id is refused (401), never created: the
// client of a session that does not exist yet cannot hold its token, and answering 401 for
// known and unknown ids alike tells a prober nothing. With tenants, a request's X-Herd-Key says
// whose a session it creates, and a session of another tenant is to it what an unknown id is
// (route-to-session lookups see only the key's own sessions; a request without a key reaches
// an existing session by its id and token as before, but creates none unless
// data.anonymous_tenant names a tenant for it).

import { timingSafeEqual } from "node:crypto";
import { setMaxListeners } from "node:events";
import type {
  Caller,
  ClusterRouting,
  Lease,
  SessionInfo,
  SessionRoutes,
  Tenancy,
} from "../core/index.ts";
import { HerdError, isHerdError, sees } from "../core/index.ts";
import { EndedBeforeForward } from "./http-errors.ts";
import type { Route } from "./route.ts";

export interface AccessOptions {
  autoAcquire: boolean;
  tokens: boolean;
  defaultPool: string | undefined;
  /** Set in a cluster: sessions of other nodes, and forwards from them. */
  cluster: ClusterRouting | undefined;
  /** Set with tenants: whose key a request's X-Herd-Key is. */
  tenancy?: Tenancy | undefined;
}

export interface Connection {
  session: SessionInfo;
  lease: Lease;
}

/** A connection a client connection's last request was served on (see SessionAccess.known). */
export interface LastConnection extends Connection {
  /** When the directory was last touched for it from here. */
  touchedAt: number;
}

function tokenMatches(given: string | undefined, expected: string): boolean {
  if (given === undefined) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

function poolFor(directory: SessionRoutes, route: Route, opts: AccessOptions): string {
  const pool = route.pool ?? opts.defaultPool;
  if (pool !== undefined) return pool;
  const names = directory.poolNames();
  if (names.length === 1) return names[0]!;
  throw new HerdError(
    "invalid_argument",
    `no pool for new session ${JSON.stringify(route.sessionId)}: send header X-Herd-Pool (one of ${names.join(", ")}) or configure a default pool`,
  );
}

/** The client's side of an exchange (its response, or its socket): "close" means it left. */
export interface ClientSide {
  once(event: "close", listener: () => void): unknown;
  off(event: "close", listener: () => void): unknown;
  /** A response's connection (a socket is its own). */
  socket?: object | null;
}

/**
 * Made only when a new session must be waited for: a client that leaves stops the wait. `stop`
 * once the wait is over: the signal means nothing after it, and a close that aborted it anyway
 * would make an error (and its stack) per session, at every connection's end.
 */
function leaving(client: ClientSide): { signal: AbortSignal; stop(): void } {
  const gone = new AbortController();
  const onClose = () => gone.abort(new HerdError("cancelled", "client went away"));
  client.once("close", onClose);
  return { signal: gone.signal, stop: () => client.off("close", onClose) };
}

/**
 * Whose key the request carries: X-Herd-Key's, else an `Authorization: Bearer` credential that
 * is a key of this herd (one that is not belongs to the worker and goes on to it); undefined
 * without either (or without tenants). An X-Herd-Key nobody holds is refused, never taken for
 * no key. A bearer key is marked on the route, so neither path sends it on.
 */
function keyCaller(route: Route, opts: AccessOptions): Caller | undefined {
  const { tenancy } = opts;
  if (tenancy === undefined) return undefined;
  const fromBearer = route.bearer === undefined ? undefined : tenancy.identify(route.bearer);
  if (fromBearer !== undefined) route.keyInAuthorization = true;
  if (route.key === undefined) return fromBearer;
  const caller = tenancy.identify(route.key);
  if (caller === undefined) {
    throw new HerdError("unauthenticated", "X-Herd-Key: not a key of this herd");
  }
  return caller;
}

/** Does the request's key (if any) see this session? Never throws (the fast path's check). */
function keySees(session: SessionInfo, route: Route, opts: AccessOptions): boolean {
  if (opts.tenancy === undefined) return true;
  try {
    const caller = keyCaller(route, opts);
    return caller === undefined || sees(caller, session);
  } catch {
    return false;
  }
}

/** The tenant a new session of this request belongs to; undefined: the operator's. */
function newSessionTenant(caller: Caller | undefined, route: Route, opts: AccessOptions) {
  const { tenancy } = opts;
  if (tenancy === undefined || caller?.kind === "operator") return undefined;
  if (caller !== undefined) return caller.name;
  if (tenancy.anonymousTenant !== undefined) return tenancy.anonymousTenant;
  throw new HerdError(
    "unauthenticated",
    `session ${JSON.stringify(route.sessionId)}: this herd serves tenants, so a new session needs a tenant's key (X-Herd-Key)`,
  );
}

async function acquire(
  directory: SessionRoutes,
  route: Route,
  opts: AccessOptions,
  client: ClientSide,
  caller: Caller | undefined,
): Promise<SessionInfo> {
  const tenant = newSessionTenant(caller, route, opts);
  const pool = poolFor(directory, route, opts);
  const gone = leaving(client);
  try {
    const acquireOpts = { signal: gone.signal, origin: "data_plane" as const };
    return tenant !== undefined && opts.tenancy
      ? await opts.tenancy.acquire(tenant, pool, route.sessionId, acquireOpts)
      : await directory.acquire(pool, route.sessionId, acquireOpts);
  } catch (err) {
    // On the data plane a wait that ran out means "no worker in time": 503 + Retry-After,
    // distinct from 504, which is reserved for a worker that did not answer (data_timeout).
    if (isHerdError(err, "deadline_exceeded")) {
      throw new HerdError(
        "unavailable",
        `no worker of pool ${pool} became free in time: ${err.message}`,
      );
    }
    throw err;
  } finally {
    gone.stop();
  }
}

/**
 * The token rule: with tokens required, only a known session with the request's token. A
 * request from a browser page of another origin (web-access.ts) is held to it whatever
 * data.tokens says, and only by what it names itself: not a session or token from a cookie.
 */
function admitted(known: SessionInfo | undefined, route: Route, opts: AccessOptions): boolean {
  if (route.crossOrigin) {
    if (route.source === "cookie" || route.tokenFrom === "cookie") return false;
  } else if (!opts.tokens) {
    return true;
  }
  return known !== undefined && tokenMatches(route.token, known.token);
}

function refusal(route: Route): HerdError {
  return new HerdError(
    "unauthenticated",
    route.crossOrigin
      ? `session ${JSON.stringify(route.sessionId)}: a request from a browser page of another origin must name an existing session and carry its token itself (X-Herd-Token or query herd_token; not cookies)`
      : `session ${JSON.stringify(route.sessionId)}: missing or wrong token (send X-Herd-Token, query herd_token or cookie herd_token)`,
  );
}

async function liveSession(
  directory: SessionRoutes,
  route: Route,
  opts: AccessOptions,
  client: ClientSide,
): Promise<SessionInfo> {
  const caller = keyCaller(route, opts);
  const found =
    route.peer === undefined
      ? (directory.lookup(route.sessionId) ?? (await opts.cluster?.find(route.sessionId)))
      : forwardedHere(directory, route, route.peer, client.socket ?? client, opts.cluster);
  const known =
    found !== undefined && (caller === undefined || sees(caller, found)) ? found : undefined;
  if (!admitted(known, route, opts)) throw refusal(route);
  if (known) return known;
  if (!opts.autoAcquire) {
    throw new HerdError(
      "not_found",
      `unknown session ${JSON.stringify(route.sessionId)} (auto_acquire is off)`,
    );
  }
  return acquire(directory, route, opts, client, caller);
}

/**
 * A request another cluster node forwarded: genuine (the credential its connection to this
 * node was opened with, see src/cluster/peer-auth.ts) and for a session that runs here, else
 * refused — it is never forwarded again nor creates a session, so a hop can neither loop nor
 * be forged or replayed by a client or a worker.
 */
function forwardedHere(
  directory: SessionRoutes,
  route: Route,
  credential: string,
  connection: object,
  cluster: ClusterRouting | undefined,
): SessionInfo {
  if (cluster?.verifyPeer(credential, connection) !== true) {
    throw new HerdError(
      "unauthenticated",
      "x-herd-peer: not a genuine node-to-node credential of this cluster",
    );
  }
  const known = directory.lookup(route.sessionId);
  if (known === undefined || known.peer !== undefined) throw endedBeforeForward(route.sessionId);
  return known;
}

/** What a node answers a request another node sent it for a session that does not run here. */
export function endedBeforeForward(sessionId: string): EndedBeforeForward {
  return new EndedBeforeForward(
    `session ${JSON.stringify(sessionId)} ended on its node before this request reached it; a retry starts a new session where auto_acquire is on`,
  );
}

/** Takes the lease; a session that has just ended throws not_found. */
function leased(
  directory: SessionRoutes,
  session: SessionInfo,
  take: (session: SessionInfo) => Lease,
): Connection {
  const lease = take(session);
  // Every request and tunnel in flight on the session listens for its end: hundreds at
  // once are normal, not the leak Node's listener warning suspects.
  setMaxListeners(0, lease.ended);
  directory.touch(session.id);
  return { session, lease };
}

/** How stale a reused connection lets the session's last-activity time get. */
const TOUCH_EVERY_MS = 1_000;

export class SessionAccess {
  constructor(
    readonly directory: SessionRoutes,
    readonly opts: AccessOptions,
  ) {}

  /**
   * Resolves (or, with autoAcquire, creates) the session and takes its data lease with `take`
   * (synchronously, so the session cannot end in between). A session that ends between lookup
   * and lease is resolved once more. Throws HerdError.
   */
  async open(
    route: Route,
    client: ClientSide,
    take: (session: SessionInfo) => Lease,
  ): Promise<Connection> {
    const { directory, opts } = this;
    for (let attempt = 0; ; attempt++) {
      const session = await liveSession(directory, route, opts, client);
      try {
        return leased(directory, session, take);
      } catch (err) {
        if (attempt === 0 && isHerdError(err, "not_found")) continue;
        throw err;
      }
    }
  }

  /**
   * The synchronous case of open(), for the fast path: `last` itself when it serves this request
   * too (see #reuse), else a session this node knows now (or a genuine forward for one that runs
   * here), the token right, the lease taken. Undefined whenever the answer would be anything
   * else — an acquire, a cluster-wide find, an error — which open() then gives. Never throws.
   */
  known(
    route: Route,
    take: (session: SessionInfo) => Lease,
    /** The client connection the request came on. */
    connection: object,
    last: LastConnection | undefined,
  ): Connection | undefined {
    if (last !== undefined && this.#reuse(last, route, connection)) return last;
    const { directory, opts } = this;
    try {
      const known =
        route.peer === undefined
          ? directory.lookup(route.sessionId)
          : forwardedHere(directory, route, route.peer, connection, opts.cluster);
      if (known === undefined || !admitted(known, route, opts)) return undefined;
      if (!keySees(known, route, opts)) return undefined;
      return leased(directory, known, take);
    } catch {
      return undefined;
    }
  }

  /**
   * Whether the next request on a client connection whose last one was served on `last` is
   * served on it too, without the lookup and the lease: the same session, still live (its lease
   * has not ended; a session's worker and token never change), and the token admitted again.
   * In a cluster the session must also still route as it did (ClusterRouting.current: this
   * node's lease valid for its own sessions, so a lapsed node stops serving at once; the owner
   * live at the same address for another node's), and a request another node forwarded must
   * carry this connection's peer credential and be for a session of this node, as the lookup
   * path demands. The directory is touched at most once a second from here: while the
   * connection holds its lease the session cannot idle out, and the lease's close records the
   * last activity anyway.
   */
  #reuse(last: LastConnection, route: Route, connection: object): boolean {
    const { opts } = this;
    const { cluster } = opts;
    if (route.sessionId !== last.session.id || last.lease.ended.aborted) return false;
    if (route.peer !== undefined) {
      if (cluster === undefined || last.session.peer !== undefined) return false;
      if (!cluster.verifyPeer(route.peer, connection)) return false;
    }
    if (cluster !== undefined && !cluster.current(last.session)) return false;
    if (!admitted(last.session, route, opts) || !keySees(last.session, route, opts)) return false;
    const now = Date.now();
    if (now - last.touchedAt >= TOUCH_EVERY_MS) {
      last.touchedAt = now;
      this.directory.touch(last.session.id);
    }
    return true;
  }
}
