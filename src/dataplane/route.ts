// Which session a data-plane request belongs to, and what of it the worker may see.
//
// Sources, first match wins, the explicit before the ambient: the session header, path prefix
// `/s/{id}/` (browsers cannot set headers on a WebSocket), query `herd_session`, cookie
// `herd_session`. A cookie is ambient — whoever managed to set it (a worker's Set-Cookie, a
// sibling page) rides along on every request — so it never overrides what the request itself
// names. The path prefix is stripped when it names the routed session, and herd's own
// parameters (session id, token: query and cookie) are removed so the worker never sees a
// token. Pure functions; the fast path (id in a header, no herd_ parameters, no /s/ prefix)
// does no URL parsing at all.

import { HerdError, PEER_HEADER, validateSessionId } from "../core/index.ts";

export const SESSION_PARAM = "herd_session";
export const TOKEN_PARAM = "herd_token";
export const TOKEN_HEADER = "x-herd-token";
export const POOL_HEADER = "x-herd-pool";
/** A tenant's key (DESIGN.md, "Tenants"): whose a session this request creates is. */
export const KEY_HEADER = "x-herd-key";

/** Request headers by lower-case name (node:http's, or the few the fast path reads). */
export interface RoutingHeaders {
  readonly cookie?: string;
  readonly [name: string]: string | string[] | undefined;
}

export type IdSource = "host" | "header" | "path" | "query" | "cookie";

export interface Route {
  sessionId: string;
  source: IdSource;
  token: string | undefined;
  /** Where the token came from: a cookie's is ambient, like a cookie's session id. */
  tokenFrom: "header" | "query" | "cookie" | undefined;
  /** A browser page of another origin sent it (set by web-access.ts): see session-access.ts. */
  crossOrigin: boolean;
  /** X-Herd-Pool: the pool for a session this request creates. */
  pool: string | undefined;
  /** X-Herd-Key: the caller's key, with tenants. */
  key: string | undefined;
  /** The credential of an `Authorization: Bearer` header: a key of herd's, or the worker's. */
  bearer: string | undefined;
  /** Set once the bearer credential proved a key of herd's: it is then not sent on. */
  keyInAuthorization?: boolean;
  /** X-Herd-Peer: set when another cluster node forwarded this request. */
  peer: string | undefined;
  /** Path and query to send to the worker. */
  path: string;
  /** Cookie header for the worker with herd's cookies removed; undefined: send none. */
  cookie: string | undefined;
}

interface Split {
  pathname: string;
  /** Query pairs verbatim (still encoded), in order. */
  pairs: string[];
}

function splitUrl(url: string): Split {
  const q = url.indexOf("?");
  if (q < 0) return { pathname: url, pairs: [] };
  return { pathname: url.slice(0, q), pairs: url.slice(q + 1).split("&") };
}

function decode(value: string, where: string): string {
  try {
    return decodeURIComponent(value.replace(/\+/g, " "));
  } catch {
    throw new HerdError("invalid_argument", `${where}: malformed percent-encoding`);
  }
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(", ") : value;
}

/** Values of herd's own query parameters, and the query without them. */
function herdParams(pairs: string[]): { session?: string; token?: string; rest: string[] } {
  const out: { session?: string; token?: string; rest: string[] } = { rest: [] };
  for (const pair of pairs) {
    const eq = pair.indexOf("=");
    const key = eq < 0 ? pair : pair.slice(0, eq);
    const value = eq < 0 ? "" : pair.slice(eq + 1);
    if (key === SESSION_PARAM) out.session ??= decode(value, `query ${SESSION_PARAM}`);
    else if (key === TOKEN_PARAM) out.token ??= decode(value, `query ${TOKEN_PARAM}`);
    else out.rest.push(pair);
  }
  return out;
}

/** Values of herd's cookies, and the Cookie header without them. */
function herdCookies(header: string): {
  session?: string;
  token?: string;
  rest: string | undefined;
} {
  const out: { session?: string; token?: string; rest: string | undefined } = { rest: undefined };
  const kept: string[] = [];
  for (const part of header.split(";")) {
    const crumb = part.trim();
    if (crumb === "") continue;
    const eq = crumb.indexOf("=");
    const name = eq < 0 ? crumb : crumb.slice(0, eq).trim();
    const value = eq < 0 ? "" : crumb.slice(eq + 1).trim();
    if (name === SESSION_PARAM) out.session ??= decode(value, `cookie ${SESSION_PARAM}`);
    else if (name === TOKEN_PARAM) out.token ??= decode(value, `cookie ${TOKEN_PARAM}`);
    else kept.push(crumb);
  }
  out.rest = kept.length > 0 ? kept.join("; ") : undefined;
  return out;
}

/** The credential of an `Authorization: Bearer` value (no header: no regex run per request). */
function bearerOf(authorization: string | undefined): string | undefined {
  return authorization === undefined ? undefined : /^Bearer\s+(\S+)\s*$/i.exec(authorization)?.[1];
}

const PATH_PREFIX = "/s/";

/** `/s/{id}/rest` → { raw: id still encoded, rest: "/rest" }; `/s/{id}` → { raw, rest: "/" }. */
function pathSession(pathname: string): { raw: string; rest: string } | undefined {
  if (!pathname.startsWith(PATH_PREFIX)) return undefined;
  const end = pathname.indexOf("/", PATH_PREFIX.length);
  const raw =
    end < 0 ? pathname.slice(PATH_PREFIX.length) : pathname.slice(PATH_PREFIX.length, end);
  return { raw, rest: end < 0 ? "/" : pathname.slice(end) };
}

const PATH_WHERE = "path /s/{id}/";

/** Does an encoded path id name `id`? A malformed encoding names nothing. */
function sameId(raw: string, id: string): boolean {
  try {
    return decode(raw, PATH_WHERE) === id;
  } catch {
    return false;
  }
}

/**
 * Routes one request. `sessionHeader` must be lower-case. `fromHost`: the session a session
 * host names (data.session_host), which then alone names it. Throws HerdError
 * invalid_argument (→ 400) when no source names a session or the named id is malformed.
 */
export function routeRequest(
  url: string,
  headers: RoutingHeaders,
  sessionHeader: string,
  fromHost?: string,
): Route {
  const cookieHeader = headers.cookie;
  const cookies = cookieHeader?.includes("herd_")
    ? herdCookies(cookieHeader)
    : { rest: cookieHeader };
  const hasHerdQuery = url.includes("herd_");
  const split = hasHerdQuery || url.startsWith(PATH_PREFIX) ? splitUrl(url) : undefined;
  const params = hasHerdQuery && split ? herdParams(split.pairs) : undefined;
  const fromPath = split ? pathSession(split.pathname) : undefined;

  let sessionId: string | undefined;
  let source: IdSource = "header";
  let where = "";
  // The prefix is stripped when it names the routed session (a page served under /s/{id}/ may
  // also send the header); a prefix naming another session is the worker's own path.
  let stripped = false;
  const fromHeader = single(headers[sessionHeader]);
  if (fromHost !== undefined) {
    [sessionId, source, where] = [fromHost, "host", "Host (data.session_host)"];
  } else if (fromHeader !== undefined) {
    sessionId = fromHeader;
    where = `header ${sessionHeader}`;
    stripped = fromPath !== undefined && sameId(fromPath.raw, fromHeader);
  } else if (fromPath) {
    [sessionId, source, where] = [decode(fromPath.raw, PATH_WHERE), "path", PATH_WHERE];
    stripped = true;
  } else if (params?.session !== undefined) {
    [sessionId, source, where] = [params.session, "query", `query ${SESSION_PARAM}`];
  } else if (cookies.session !== undefined) {
    [sessionId, source, where] = [cookies.session, "cookie", `cookie ${SESSION_PARAM}`];
  }
  if (sessionId === undefined) {
    throw new HerdError(
      "invalid_argument",
      `missing session id: send header ${sessionHeader}, path /s/{id}/, query ${SESSION_PARAM} or cookie ${SESSION_PARAM}`,
    );
  }
  validateSessionId(sessionId, where);

  let path = url;
  if (split && (params || stripped)) {
    const pathname = stripped && fromPath ? fromPath.rest : split.pathname;
    const query = params ? params.rest : split.pairs;
    path = query.length > 0 ? `${pathname}?${query.join("&")}` : pathname;
  }
  const headerToken = single(headers[TOKEN_HEADER]);
  const token = headerToken ?? params?.token ?? cookies.token;
  return {
    sessionId,
    source,
    token,
    tokenFrom:
      token === undefined
        ? undefined
        : headerToken !== undefined
          ? "header"
          : params?.token !== undefined
            ? "query"
            : "cookie",
    crossOrigin: false,
    pool: single(headers[POOL_HEADER]),
    key: single(headers[KEY_HEADER]),
    bearer: bearerOf(single(headers.authorization)),
    peer: single(headers[PEER_HEADER]),
    path,
    cookie: cookies.rest,
  };
}
