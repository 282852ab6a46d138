// Header rewriting between client and worker (RFC 7230 §6.1 hop-by-hop rules), on raw header
// arrays so names keep their case, order and duplicates. Pure functions.
//
// Removed in both directions: Connection and every header it lists, Keep-Alive, TE, Trailer,
// Transfer-Encoding (Node re-frames bodies itself), Upgrade (kept for a WebSocket handshake),
// Proxy-*. Towards the worker also herd's own X-Herd-Token / X-Herd-Pool, the Cookie header
// (replaced by the one with herd's cookies removed) and any X-Forwarded-* the client sent
// (X-Forwarded-For is extended, the others are set from what herd saw).

import { POOL_HEADER, TOKEN_HEADER } from "./route.ts";

const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

/** Lower-case names listed in Connection headers (they are hop-by-hop too). */
function connectionListed(raw: readonly string[]): Set<string> | undefined {
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

function isHopByHop(lower: string, listed: Set<string> | undefined): boolean {
  return HOP_BY_HOP.has(lower) || lower.startsWith("proxy-") || (listed?.has(lower) ?? false);
}

export interface ToWorker {
  /** Cookie header to send (herd cookies already removed), undefined: none. */
  cookie: string | undefined;
  /** The client's address, appended to X-Forwarded-For. */
  remoteAddress: string | undefined;
  /** Keep Connection: Upgrade / Upgrade (WebSocket handshake). */
  upgrade: boolean;
}

/** Raw request headers for the worker. */
export function requestHeadersForWorker(raw: readonly string[], to: ToWorker): string[] {
  const listed = connectionListed(raw);
  const out: string[] = [];
  let forwardedFor: string | undefined;
  let host: string | undefined;
  let upgrade: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    const lower = name.toLowerCase();
    if (lower === "host") host = value;
    if (lower === "upgrade") upgrade = value;
    if (lower === "x-forwarded-for") {
      forwardedFor = forwardedFor === undefined ? value : `${forwardedFor}, ${value}`;
      continue;
    }
    if (
      isHopByHop(lower, listed) ||
      lower === "cookie" ||
      lower === TOKEN_HEADER ||
      lower === POOL_HEADER ||
      lower === "x-forwarded-proto" ||
      lower === "x-forwarded-host"
    ) {
      continue;
    }
    out.push(name, value);
  }
  if (to.cookie !== undefined) out.push("Cookie", to.cookie);
  const client = to.remoteAddress ?? "unknown";
  out.push("X-Forwarded-For", forwardedFor === undefined ? client : `${forwardedFor}, ${client}`);
  out.push("X-Forwarded-Proto", "http");
  if (host !== undefined) out.push("X-Forwarded-Host", host);
  if (to.upgrade && upgrade !== undefined) out.push("Connection", "Upgrade", "Upgrade", upgrade);
  return out;
}

/** Raw response headers for the client; `upgrade` keeps Connection/Upgrade of a 101. */
export function responseHeadersForClient(raw: readonly string[], upgrade = false): string[] {
  const listed = connectionListed(raw);
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (upgrade && (lower === "connection" || lower === "upgrade")) {
      out.push(name, raw[i + 1]!);
      continue;
    }
    if (isHopByHop(lower, listed)) continue;
    out.push(name, raw[i + 1]!);
  }
  return out;
}
