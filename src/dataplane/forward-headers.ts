// Header rewriting between client and worker (RFC 7230 §6.1 hop-by-hop rules), on raw header
// arrays so names keep their case, order and duplicates. Pure functions. This is the one place
// both proxy paths (plain HTTP, WebSocket handshake and a declined upgrade) rewrite headers, so
// herd's reserved names are enforced here:
//
// Removed in both directions: Connection and every header it lists, Keep-Alive, TE, Trailer,
// Transfer-Encoding (Node re-frames bodies itself), Upgrade (kept for a WebSocket handshake),
// Proxy-*. Towards the worker also herd's own X-Herd-Token / X-Herd-Pool / X-Herd-Peer, the Cookie header
// (replaced by the one with herd's cookies removed), herd's query parameters inside Referer
// (the page the client came from may carry ?herd_token=; Origin has no query, so it cannot)
// and any X-Forwarded-* the client sent (X-Forwarded-For is extended, the others are set from
// what herd saw). Towards the client also every Set-Cookie of a `herd_*` cookie: herd's
// cookies are its routing and its credential, and a worker that could set them could steer
// its victim's later requests to itself.
//
// Trailer fields (after a chunked body) pass by the same rules: trailerSection rewrites a held
// trailer section with requestTrailersForWorker or responseHeadersForClient (node:http's path
// passes none on: it drops them all).
//
// The fast path rewrites a response head on its bytes (clientResponseHead) rather than on
// decoded strings; it decides each field with the same list and cookie rule, and its spec
// checks it writes exactly what headBlock(responseHeadersForClient(...)) would.

import { PEER_HEADER } from "../core/index.ts";
import { equalsLower } from "./http1/bytes.ts";
import type { RequestScan } from "./http1/request-head.ts";
import type { ResponseScan } from "./http1/response-head.ts";
import { POOL_HEADER, SESSION_PARAM, TOKEN_HEADER, TOKEN_PARAM } from "./route.ts";

/** Cookie names herd reserves; matched in any letter case (see setsHerdCookie). */
const HERD_COOKIE_PREFIX = "herd_";

const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

const HOP_BY_HOP_NAMES = [...HOP_BY_HOP];
const HOP_BY_HOP_LENGTHS = new Set(HOP_BY_HOP_NAMES.map((name) => name.length));

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
    if (isHopByHop(lower, listed) || NOT_TO_WORKER.has(lower)) continue;
    out.push(name, lower === "referer" ? scrubReferer(value) : value);
  }
  out.push(...fieldsOfOurs(to, forwardedFor, host, upgrade));
  return out;
}

/** Request fields not forwarded as sent, besides hop-by-hop ones and X-Forwarded-For (which
 *  is extended): herd's own, the Cookie (replaced by `to.cookie`), the X-Forwarded-* herd sets. */
const NOT_TO_WORKER = new Set([
  "cookie",
  TOKEN_HEADER,
  POOL_HEADER,
  PEER_HEADER,
  "x-forwarded-proto",
  "x-forwarded-host",
]);
const NOT_TO_WORKER_NAMES = [...NOT_TO_WORKER];

/** The fields herd adds after the client's, in order. */
function fieldsOfOurs(
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
  return out;
}

/**
 * Raw request trailer fields for the worker: requestHeadersForWorker's drops and Referer
 * scrubbing, and no field of herd's (a trailer X-Forwarded-* or Cookie is the client's).
 */
export function requestTrailersForWorker(raw: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const lower = raw[i]!.toLowerCase();
    if (isHopByHop(lower, undefined) || NOT_TO_WORKER.has(lower)) continue;
    if (lower === "host" || lower === "x-forwarded-for") continue;
    out.push(raw[i]!, lower === "referer" ? scrubReferer(raw[i + 1]!) : raw[i + 1]!);
  }
  return out;
}

/**
 * A trailer section ChunkedFraming accepted ("name: value" CRLF lines, then CRLF), rewritten
 * by `rule`: the kept fields, then CRLF.
 */
export function trailerSection(
  section: Buffer,
  rule: (raw: readonly string[]) => string[],
): Buffer {
  const raw: string[] = [];
  for (const line of section.toString("latin1").split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon > 0) raw.push(line.slice(0, colon), line.slice(colon + 1).trim());
  }
  return Buffer.from(`${fieldLines(rule(raw))}\r\n`, "latin1");
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
    if (lower === "set-cookie" && setsHerdCookie(raw[i + 1]!)) continue;
    out.push(name, raw[i + 1]!);
  }
  return out;
}

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

/** A message head as written on the wire (latin1): start line, headers, the empty line. */
export function headBlock(startLine: string, raw: readonly string[]): string {
  return `${startLine}\r\n${fieldLines(raw)}\r\n`;
}

/** `name: value` CRLF for each pair of `raw`. */
function fieldLines(raw: readonly string[]): string {
  let text = "";
  for (let i = 0; i < raw.length; i += 2) text += `${raw[i]}: ${raw[i + 1]}\r\n`;
  return text;
}

const STATUS_LINE_START = Buffer.from("HTTP/1.1 ", "latin1");
const SP = 0x20;
const CR = 0x0d;
const LF = 0x0a;
const COLON = 0x3a;

/** connectionListed for a scanned head (decoding only its Connection values), if it lists any. */
function scannedConnectionListed(buf: Buffer, scan: ScannedFields): Set<string> | undefined {
  if (!scan.connectionListsOthers) return undefined;
  const raw: string[] = [];
  const { fields } = scan;
  for (let m = 0; m < 4 * scan.fieldCount; m += 4) {
    if (equalsLower(buf, fields[m]!, fields[m + 1]!, "connection")) {
      raw.push("connection", buf.toString("latin1", fields[m + 2]!, fields[m + 3]!));
    }
  }
  return connectionListed(raw);
}

type ScannedFields = Pick<ResponseScan, "fields" | "fieldCount" | "connectionListsOthers">;

/** Field k (at fields[m]) of a scanned head came as "name: value" CRLF (one space, the value
 *  unpadded), so its line can be passed on whole. */
function writtenPlain(buf: Buffer, fields: Int32Array, m: number, lineEnd: number): boolean {
  const ne = fields[m + 1]!;
  return fields[m + 2] === ne + 2 && buf[ne + 1] === SP && fields[m + 3]! + 2 === lineEnd;
}

/** buf.copy, but a plain loop for a few bytes: it costs less than buf.copy's checks. */
function copyBytes(
  from: Uint8Array,
  start: number,
  end: number,
  to: Uint8Array,
  at: number,
): number {
  if (end - start > 16) return (from as Buffer).copy(to, at, start, end);
  for (let k = start; k < end; k++) to[at++] = from[k]!;
  return end - start;
}

/** isHopByHop for the name buf[ns..ne) of a scanned head. */
function scannedHopByHop(
  buf: Buffer,
  ns: number,
  ne: number,
  listed: Set<string> | undefined,
): boolean {
  const n = ne - ns;
  if (n >= 6 && equalsLower(buf, ns, ns + 6, "proxy-")) return true;
  if (HOP_BY_HOP_LENGTHS.has(n)) {
    for (const name of HOP_BY_HOP_NAMES) if (equalsLower(buf, ns, ne, name)) return true;
  }
  return listed?.has(buf.toString("latin1", ns, ne).toLowerCase()) ?? false;
}

/** responseHeadersForClient's verdict on field buf[ns..ne) of a scanned head: dropped? */
function dropsScannedField(
  buf: Buffer,
  ns: number,
  ne: number,
  vs: number,
  ve: number,
  listed: Set<string> | undefined,
): boolean {
  if (scannedHopByHop(buf, ns, ne, listed)) return true;
  return (
    ne - ns === 10 &&
    equalsLower(buf, ns, ne, "set-cookie") &&
    setsHerdCookie(buf.toString("latin1", vs, ve))
  );
}

/**
 * headBlock(`HTTP/1.1 ${status} ${reason}`, responseHeadersForClient(fields)) with `framing`
 * (CRLF-terminated lines of ours) after the kept fields, and `body` after the head, in one new
 * buffer: the same bytes, without decoding the head to strings and encoding it again (the fast
 * path's per-response cost). Runs of fields already written "name: value" are copied whole.
 */
export function clientResponseHead(
  buf: Buffer,
  scan: ResponseScan,
  framing: Buffer,
  body: Buffer,
): Buffer {
  const listed = scannedConnectionListed(buf, scan);
  const { fields, fieldCount } = scan;
  const reasonBytes = scan.reasonEnd - scan.reasonStart;
  // A field grows by one byte at most (a space after its colon where it had none).
  const max = 15 + reasonBytes + scan.headBytes + fieldCount + framing.length + body.length;
  const out = Buffer.allocUnsafe(max);
  let pos = 0;
  /** Start of the verbatim lines not copied yet, or -1. */
  let run = -1;
  if (scan.minor === 1 && scan.reasonStart === scan.start + 13) {
    // "HTTP/1.1 200 reason": the status line is ours as it came, the first line of a run.
    run = scan.start;
  } else {
    pos = copyBytes(STATUS_LINE_START, 0, STATUS_LINE_START.length, out, 0);
    pos += copyBytes(buf, scan.start + 9, scan.start + 12, out, pos);
    out[pos++] = SP;
    pos += copyBytes(buf, scan.reasonStart, scan.reasonEnd, out, pos);
    out[pos++] = CR;
    out[pos++] = LF;
  }
  const fieldsEnd = scan.start + scan.headBytes - 2;
  for (let k = 0; k < fieldCount; k++) {
    const m = 4 * k;
    const ns = fields[m]!;
    const ne = fields[m + 1]!;
    const vs = fields[m + 2]!;
    const ve = fields[m + 3]!;
    const dropped = dropsScannedField(buf, ns, ne, vs, ve, listed);
    const lineEnd = k + 1 < fieldCount ? fields[m + 4]! : fieldsEnd;
    if (!dropped && writtenPlain(buf, fields, m, lineEnd)) {
      if (run < 0) run = ns;
      continue;
    }
    if (run >= 0) {
      pos += copyBytes(buf, run, ns, out, pos);
      run = -1;
    }
    if (dropped) continue;
    pos += copyBytes(buf, ns, ne, out, pos);
    out[pos++] = COLON;
    out[pos++] = SP;
    pos += copyBytes(buf, vs, ve, out, pos);
    out[pos++] = CR;
    out[pos++] = LF;
  }
  if (run >= 0) pos += copyBytes(buf, run, fieldsEnd, out, pos);
  pos += copyBytes(framing, 0, framing.length, out, pos);
  out[pos++] = CR;
  out[pos++] = LF;
  pos += copyBytes(body, 0, body.length, out, pos);
  return out.subarray(0, pos);
}

/**
 * headBlock(`${method} ${path} HTTP/1.1`, [...requestHeadersForWorker(fields, to), ...extra])
 * for a scanned request (never an upgrade): the fast path's request to the worker. `text` is
 * the head decoded once (latin1, from scan.start); names are compared on the bytes and kept
 * fields are slices of `text`, a run of fields already written "name: value" in one slice, so
 * nothing is lower-cased or copied per field. Its spec checks the result is the same.
 */
export function workerRequestHead(
  buf: Buffer,
  text: string,
  scan: RequestScan,
  path: string,
  to: ToWorker,
  extra: readonly string[],
): string {
  const listed = scannedConnectionListed(buf, scan);
  const { fields, fieldCount, start } = scan;
  let out = `${scan.method} ${path} HTTP/1.1\r\n`;
  let forwardedFor: string | undefined;
  let host: string | undefined;
  const fieldsEnd = scan.headBytes - 2;
  /** Start (in text) of the verbatim lines not added yet, or -1. */
  let run = -1;
  for (let k = 0; k < fieldCount; k++) {
    const m = 4 * k;
    const ns = fields[m]!;
    const ne = fields[m + 1]!;
    const vs = fields[m + 2]!;
    const ve = fields[m + 3]!;
    const n = ne - ns;
    let value: string | undefined;
    let dropped = false;
    if (n === 4 && equalsLower(buf, ns, ne, "host")) {
      host = text.slice(vs - start, ve - start);
    } else if (n === 15 && equalsLower(buf, ns, ne, "x-forwarded-for")) {
      const sent = text.slice(vs - start, ve - start);
      forwardedFor = forwardedFor === undefined ? sent : `${forwardedFor}, ${sent}`;
      dropped = true;
    } else if (scannedHopByHop(buf, ns, ne, listed) || notToWorker(buf, ns, ne)) {
      dropped = true;
    } else if (n === 7 && equalsLower(buf, ns, ne, "referer")) {
      const sent = text.slice(vs - start, ve - start);
      const scrubbed = scrubReferer(sent);
      if (scrubbed !== sent) value = scrubbed;
    }
    const lineEnd = k + 1 < fieldCount ? fields[m + 4]! : fieldsEnd + start;
    if (!dropped && value === undefined && writtenPlain(buf, fields, m, lineEnd)) {
      if (run < 0) run = ns - start;
      continue;
    }
    if (run >= 0) {
      out += text.slice(run, ns - start);
      run = -1;
    }
    if (dropped) continue;
    out += `${text.slice(ns - start, ne - start)}: ${value ?? text.slice(vs - start, ve - start)}\r\n`;
  }
  if (run >= 0) out += text.slice(run, fieldsEnd);
  return `${out}${fieldLines(fieldsOfOurs(to, forwardedFor, host, undefined))}${fieldLines(extra)}\r\n`;
}

function notToWorker(buf: Buffer, ns: number, ne: number): boolean {
  for (const name of NOT_TO_WORKER_NAMES) if (equalsLower(buf, ns, ne, name)) return true;
  return false;
}
