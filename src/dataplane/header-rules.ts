// The proxy's header rules, written once (RFC 9110 §7.6.1 hop-by-hop fields, and herd's reserved
// names): which fields never cross the proxy, which never reach a worker, which never reach a
// client, and how the few it rewrites are rewritten. Both forwarding paths apply these same
// rules: node:http's on decoded header arrays (forward-headers.ts), the fast path on the bytes
// of a scanned head (fast/head-rewrite.ts), each field classified by `ruleOf` or `ruleOfBytes`,
// which read one table. Pure; the tables are built once at load.
//
// Removed in both directions: Connection and every field it lists, Keep-Alive, TE, Trailer,
// Transfer-Encoding (each path frames bodies itself), Upgrade (kept for a WebSocket handshake),
// Proxy-*. Towards the worker also herd's own X-Herd-Token / X-Herd-Key / X-Herd-Pool / X-Herd-Peer, the
// Cookie header (replaced by the one with herd's cookies removed), herd's query parameters
// inside Referer (the page the client came from may carry ?herd_token=; Origin has no query, so
// it cannot), an Authorization header whose bearer credential is a key of herd's (a tenant's,
// session-access.ts decides per request; any other Authorization is the worker's and goes on)
// and any X-Forwarded-* the client sent (X-Forwarded-For is extended, the others are
// set from what herd saw). Towards the client also every Set-Cookie of a `herd_*` cookie: herd's
// cookies are its routing and its credential, and a worker that could set them could steer its
// victim's later requests to itself. A request herd traces reaches its worker with herd's own
// span as its `traceparent`, in place of the client's (ToWorker.traceparent, Rule.TraceParent). Trailer fields pass by the same rules, with nothing of
// herd's added.

import { PEER_HEADER } from "../core/index.ts";
import { equalsLower } from "./http1/bytes.ts";
import { KEY_HEADER, POOL_HEADER, SESSION_PARAM, TOKEN_HEADER, TOKEN_PARAM } from "./route.ts";

/** What a field name is to the proxy. */
export const Rule = {
  /** Forwarded as sent, both ways. */
  Pass: 0,
  /** Never crosses the proxy. */
  HopByHop: 1,
  /** Hop-by-hop, and lists more hop-by-hop names; a 101 passes it to the client. */
  Connection: 2,
  /** Hop-by-hop; its value goes to the worker of a WebSocket handshake; a 101 passes it. */
  Upgrade: 3,
  /** herd's own, or one herd sets itself: never reaches a worker as the client sent it. */
  NotToWorker: 4,
  /** Never reaches a worker as sent: herd extends it with the client's address. */
  ForwardedFor: 5,
  /** Forwarded, and what herd's X-Forwarded-Host says. */
  Host: 6,
  /** Forwarded to the worker without herd's query parameters (scrubReferer). */
  Referer: 7,
  /** Forwarded to the client unless it sets one of herd's cookies (setsHerdCookie). */
  SetCookie: 8,
  /** Forwarded to the worker unless it carried a key of herd's (ToWorker.keyInAuthorization). */
  Authorization: 9,
  /** The client's W3C trace parent: forwarded as sent, unless herd traces the request and
   *  sends its own span as the worker's parent instead (ToWorker.traceparent). */
  TraceParent: 10,
} as const;
export type Rule = (typeof Rule)[keyof typeof Rule];

/** Every name whose rule is not Pass, lower case; besides them, a name starting with PROXY is
 *  hop-by-hop. */
const RULES = new Map<string, Rule>([
  ["connection", Rule.Connection],
  ["keep-alive", Rule.HopByHop],
  ["te", Rule.HopByHop],
  ["trailer", Rule.HopByHop],
  ["transfer-encoding", Rule.HopByHop],
  ["upgrade", Rule.Upgrade],
  ["cookie", Rule.NotToWorker],
  [TOKEN_HEADER, Rule.NotToWorker],
  [KEY_HEADER, Rule.NotToWorker],
  [POOL_HEADER, Rule.NotToWorker],
  [PEER_HEADER, Rule.NotToWorker],
  ["x-forwarded-proto", Rule.NotToWorker],
  ["x-forwarded-host", Rule.NotToWorker],
  ["x-forwarded-for", Rule.ForwardedFor],
  ["host", Rule.Host],
  ["referer", Rule.Referer],
  ["set-cookie", Rule.SetCookie],
  ["authorization", Rule.Authorization],
  ["traceparent", Rule.TraceParent],
]);
const PROXY = "proxy-";

/** The rule of a lower-case field name. */
export function ruleOf(lower: string): Rule {
  return RULES.get(lower) ?? (lower.startsWith(PROXY) ? Rule.HopByHop : Rule.Pass);
}

/** RULES by name length, for comparing on the bytes: names[k] has rules[k]. */
const BY_LENGTH: { names: string[]; rules: Rule[] }[] = [];
for (const [name, rule] of RULES) {
  const bucket = BY_LENGTH[name.length] ?? { names: [], rules: [] };
  BY_LENGTH[name.length] = bucket;
  bucket.names.push(name);
  bucket.rules.push(rule);
}

/** ruleOf for the name buf[ns..ne) of a scanned head (tchar bytes), without decoding it. */
export function ruleOfBytes(buf: Buffer, ns: number, ne: number): Rule {
  const n = ne - ns;
  const bucket = BY_LENGTH[n];
  if (bucket !== undefined) {
    const { names } = bucket;
    for (let k = 0; k < names.length; k++) {
      if (equalsLower(buf, ns, ne, names[k]!)) return bucket.rules[k]!;
    }
  }
  return n >= PROXY.length && equalsLower(buf, ns, ns + PROXY.length, PROXY)
    ? Rule.HopByHop
    : Rule.Pass;
}

/** The rules in `rules`, as a table indexed by rule. */
function ruleSet(...rules: Rule[]): Uint8Array {
  const set = new Uint8Array(Object.keys(Rule).length);
  for (const rule of rules) set[rule] = 1;
  return set;
}

const HOP_BY_HOP = ruleSet(Rule.HopByHop, Rule.Connection, Rule.Upgrade);
const NOT_TO_WORKER_RULES = [
  Rule.HopByHop,
  Rule.Connection,
  Rule.Upgrade,
  Rule.NotToWorker,
  Rule.ForwardedFor,
];
const NOT_TO_WORKER = ruleSet(...NOT_TO_WORKER_RULES);
/** NOT_TO_WORKER for a traced request: the worker gets herd's traceparent, not the client's. */
const NOT_TO_WORKER_TRACED = ruleSet(...NOT_TO_WORKER_RULES, Rule.TraceParent);
/** NOT_TO_WORKER for a request whose Authorization carried a key of herd's. */
const NOT_TO_WORKER_KEYED = ruleSet(...NOT_TO_WORKER_RULES, Rule.Authorization);
const NOT_TO_WORKER_KEYED_TRACED = ruleSet(
  ...NOT_TO_WORKER_RULES,
  Rule.Authorization,
  Rule.TraceParent,
);
/** herd adds none of its fields after a body, so a trailer Host or X-Forwarded-For, which it
 *  would otherwise take into its own, is dropped too. */
const TRAILER_NOT_TO_WORKER = ruleSet(
  Rule.HopByHop,
  Rule.Connection,
  Rule.Upgrade,
  Rule.NotToWorker,
  Rule.ForwardedFor,
  Rule.Host,
);

/**
 * The rules whose fields are dropped on a request's way to the worker (the table `to` asks for:
 * a traced request's own traceparent is herd's; an Authorization that carried a key of herd's
 * is herd's), judged per field by dropsToWorker.
 */
export function notToWorker(to: ToWorker): Uint8Array {
  const traced = to.traceparent !== undefined;
  if (to.keyInAuthorization === true)
    return traced ? NOT_TO_WORKER_KEYED_TRACED : NOT_TO_WORKER_KEYED;
  return traced ? NOT_TO_WORKER_TRACED : NOT_TO_WORKER;
}

/** Is a request field dropped on its way to the worker? `listed`: a Connection header names it;
 *  `drops`: notToWorker's table for the request. */
export function dropsToWorker(rule: Rule, listed: boolean, drops: Uint8Array): boolean {
  return listed || drops[rule] === 1;
}

/** Is a request trailer field dropped on its way to the worker? */
export function dropsTrailerToWorker(rule: Rule): boolean {
  return TRAILER_NOT_TO_WORKER[rule] === 1;
}

/**
 * Is a response field dropped on its way to the client? `listed`: a Connection header names it;
 * `upgrade`: the response is a 101, whose Connection and Upgrade the client needs. A Set-Cookie
 * that passes is judged by its value too (setsHerdCookie).
 */
export function dropsToClient(rule: Rule, listed: boolean, upgrade: boolean): boolean {
  if (upgrade && (rule === Rule.Connection || rule === Rule.Upgrade)) return false;
  return listed || HOP_BY_HOP[rule] === 1;
}

/** Lower-case names listed in the Connection headers among `raw` (name, value pairs): they
 *  are hop-by-hop too. */
export function connectionListed(raw: readonly string[]): Set<string> | undefined {
  let listed: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.toLowerCase() !== "connection") continue;
    for (const token of raw[i + 1]!.split(",")) {
      const name = token.trim().toLowerCase();
      if (name !== "" && name !== "close" && name !== "keep-alive" && name !== "upgrade") {
        listed ??= new Set();
        listed.add(name);
      }
    }
  }
  return listed;
}

/** What herd knows of a request that the worker is told in fields of herd's own. */
export interface ToWorker {
  /** Cookie header to send (herd cookies already removed), undefined: none. */
  cookie: string | undefined;
  /** The client's address, appended to X-Forwarded-For. */
  remoteAddress: string | undefined;
  /** Keep Connection: Upgrade / Upgrade (WebSocket handshake). */
  upgrade: boolean;
  /** The Authorization header carried a key of herd's (a tenant's, the operator's): drop it. */
  keyInAuthorization?: boolean;
  /** Set when herd traces the request: the trace parent the worker gets, instead of the client's. */
  traceparent?: string;
}

/** What a routed request tells its worker: `route`'s cookie and key, and the client's address. */
export function toWorker(
  route: { cookie: string | undefined; keyInAuthorization?: boolean },
  remoteAddress: string | undefined,
  upgrade: boolean,
  traceparent?: string,
): ToWorker {
  return {
    cookie: route.cookie,
    remoteAddress,
    upgrade,
    traceparent,
    keyInAuthorization: route.keyInAuthorization,
  };
}

/** The fields herd adds after the client's, in order: the client's values of X-Forwarded-For,
 *  Host and Upgrade as it sent them (undefined: none). */
export function fieldsOfOurs(
  to: ToWorker,
  forwardedFor: string | undefined,
  host: string | undefined,
  upgrade: string | undefined,
): string[] {
  const out: string[] = [];
  if (to.cookie !== undefined) out.push("Cookie", to.cookie);
  const client = to.remoteAddress ?? "unknown";
  out.push("X-Forwarded-For", forwardedFor === undefined ? client : `${forwardedFor}, ${client}`);
  out.push("X-Forwarded-Proto", "http");
  if (host !== undefined) out.push("X-Forwarded-Host", host);
  if (to.upgrade && upgrade !== undefined) out.push("Connection", "Upgrade", "Upgrade", upgrade);
  if (to.traceparent !== undefined) out.push("traceparent", to.traceparent);
  return out;
}

/** Cookie names herd reserves; matched in any letter case (see setsHerdCookie). */
const HERD_COOKIE_PREFIX = "herd_";

/**
 * Does this Set-Cookie value set one of herd's cookies? The name is what precedes the first `=`
 * of the first `;`-separated part, trimmed (RFC 6265 §5.2); a part without `=` counts as a name,
 * as herd's own Cookie parser reads it. The prefix is matched in any letter case: cookie names
 * are case-sensitive, so `HERD_SESSION` would not route today, but nothing is lost by refusing
 * a worker the whole reserved prefix, and a future reader of herd's cookies cannot be fooled.
 */
export function setsHerdCookie(value: string): boolean {
  const semi = value.indexOf(";");
  const pair = semi < 0 ? value : value.slice(0, semi);
  const eq = pair.indexOf("=");
  const name = (eq < 0 ? pair : pair.slice(0, eq)).trim();
  return name.slice(0, HERD_COOKIE_PREFIX.length).toLowerCase() === HERD_COOKIE_PREFIX;
}

const REFERER_SCRUBBED = new Set([SESSION_PARAM, TOKEN_PARAM]);

function queryKey(pair: string): string {
  const eq = pair.indexOf("=");
  const key = eq < 0 ? pair : pair.slice(0, eq);
  try {
    return decodeURIComponent(key.replace(/\+/g, " "));
  } catch {
    return key;
  }
}

/**
 * A Referer without herd's query parameters (`herd_token`, `herd_session`, also when
 * percent-encoded); everything else — path, other parameters, their order and encoding, a
 * fragment — stays verbatim.
 */
export function scrubReferer(value: string): string {
  const q = value.indexOf("?");
  // herd reads its parameters by their literal names only, so a query without "herd" holds none.
  if (q < 0 || !value.includes("herd", q)) return value;
  const hash = value.indexOf("#", q);
  const end = hash < 0 ? value.length : hash;
  const pairs = value.slice(q + 1, end).split("&");
  const kept = pairs.filter((pair) => !REFERER_SCRUBBED.has(queryKey(pair)));
  if (kept.length === pairs.length) return value;
  const query = kept.length > 0 ? `?${kept.join("&")}` : "";
  return `${value.slice(0, q)}${query}${value.slice(end)}`;
}
