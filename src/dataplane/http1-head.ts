// Strict HTTP/1.x head parsers and chunked-body framing for the data plane's hot path, which
// reads raw bytes and must know where each request and response ends. Pure; no I/O.
//
// Invariant (requests): parseRequestHead accepts only what llhttp in Node's default strict mode
// accepts, identically: same method, target, version, header list, body framing, keep-alive and
// upgrade verdict, and nothing node:http's server would then refuse (an HTTP/1.1 request without
// Host). Whatever it is not sure of it declines, and the caller hands the connection to node:http,
// whose verdict stands: a byte sequence on which the two could disagree about where a request
// ends (request smuggling) never takes the fast path. Responses come from a worker, which may be
// hostile: the same strictness, and anything odd is "invalid" (the caller answers 502).
// ChunkedFraming accepts a subset of llhttp's chunked grammar, split at any byte.
// src/dataplane/http1-head.spec.ts checks all three against llhttp itself (differential fuzz).
//
// Concurrency: the parsers share one module-level scratch array of field offsets; they are
// synchronous and never re-entered, so that is safe. Each ChunkedFraming belongs to one body.

export type BodyFraming =
  | { kind: "none" }
  /** Content-Length, a safe integer > 0 (Content-Length: 0 is "none"). */
  | { kind: "length"; length: number }
  /** Transfer-Encoding: chunked, the only transfer coding accepted. */
  | { kind: "chunked" }
  /** Responses only: the body runs until the worker closes the connection. */
  | { kind: "close" };

export interface RequestHead {
  method: string;
  target: string;
  /** HTTP/1.<minor> */
  minor: 0 | 1;
  /** [name, value, name, value, ...] as IncomingMessage.rawHeaders: names as sent, values OWS-trimmed. */
  rawHeaders: string[];
  /** Bytes of the head including the final CRLF CRLF. */
  headBytes: number;
  /** Never "close" for requests. */
  body: BodyFraming;
  /** HTTP/1.1 unless Connection: close; HTTP/1.0 only with Connection: keep-alive. */
  keepAlive: boolean;
  /** An Upgrade header and a Connection header listing upgrade (CONNECT is declined). */
  upgrade: boolean;
  /** Expect: 100-continue (any case; any other expectation is declined). */
  expectContinue: boolean;
}

export interface ResponseHead {
  status: number;
  minor: 0 | 1;
  reason: string;
  rawHeaders: string[];
  headBytes: number;
  /** 1xx/204/304 and answers to HEAD → none; then chunked, Content-Length, else close. */
  body: BodyFraming;
  keepAlive: boolean;
}

/**
 * A head as offsets into the scanned buffer, nothing decoded: what the fast path routes and
 * rewrites on the bytes. `fields` is the parsers' shared scratch (name start, name end, value
 * start, value end per field, values OWS-trimmed): valid until the next parse call.
 */
interface ScannedHead {
  minor: 0 | 1;
  /** Where the head starts in the buffer, and its length including the final CRLF CRLF. */
  start: number;
  headBytes: number;
  fields: Int32Array;
  fieldCount: number;
  /** A Connection header names other fields as hop-by-hop. */
  connectionListsOthers: boolean;
  body: BodyFraming;
  keepAlive: boolean;
}

/** parseRequestHead's verdict, scanned (see ScannedHead). */
export interface RequestScan extends ScannedHead {
  method: string;
  /** The request target is buf[targetStart..targetEnd). */
  targetStart: number;
  targetEnd: number;
  upgrade: boolean;
  expectContinue: boolean;
}

/** parseResponseHead's verdict, scanned (see ScannedHead). */
export interface ResponseScan extends ScannedHead {
  status: number;
  /** The reason phrase is buf[reasonStart..reasonEnd). */
  reasonStart: number;
  reasonEnd: number;
}

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const HTAB = 0x09;
const COLON = 0x3a;
const COMMA = 0x2c;
const SEMI = 0x3b;
const EQUALS = 0x3d;
const DQUOTE = 0x22;
const BACKSLASH = 0x5c;

function table(chars: string, ranges: [number, number][] = []): Uint8Array {
  const t = new Uint8Array(256);
  for (let i = 0; i < chars.length; i++) t[chars.charCodeAt(i)] = 1;
  for (const [lo, hi] of ranges) t.fill(1, lo, hi + 1);
  return t;
}

const ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/** tchar (RFC 9110 §5.6.2): header names, methods, list tokens, chunk-extension names. */
const TCHAR = table(`!#$%&'*+-.^_\`|~${ALNUM}`);
/** Field-value bytes llhttp accepts: HTAB, SP, VCHAR, obs-text (no other CTL, no DEL). */
const FIELD = table("\t", [
  [0x20, 0x7e],
  [0x80, 0xff],
]);
/** Origin-form target bytes: llhttp's strict URL characters plus '?'. No '#' (a fragment never
 *  belongs in a request), no HTAB/FF/obs-text (llhttp's lenient extras). */
const TARGET = table(`!"$%&'()*+,-./:;<=>@[\\]^_\`{|}~?${ALNUM}`);
/** qdtext and the second byte of a quoted-pair in a chunk extension's quoted value. */
const QDTEXT = table("\t !", [
  [0x23, 0x5b],
  [0x5d, 0x7e],
  [0x80, 0xff],
]);
const QPAIR = table("\t", [
  [0x20, 0x7e],
  [0x80, 0xff],
]);
const HEX = new Int8Array(256).fill(-1);
for (let i = 0; i < 16; i++) {
  HEX[i.toString(16).charCodeAt(0)] = i;
  HEX[i.toString(16).toUpperCase().charCodeAt(0)] = i;
}

/** More header fields than any browser or client sends; beyond it, node:http decides. */
const MAX_FIELDS = 256;
/** Chunk-size lines (digits and extensions): Node refuses more than 16 KiB of extensions per
 *  body; this stays below that per line and in total. */
const MAX_CHUNK_LINE = 4096;
const MAX_EXTENSION_BYTES = 16 * 1024;
/** Trailer section bytes, CRLFs included (Node counts only names and values against 16 KiB). */
const MAX_TRAILER_BYTES = 16 * 1024;

/** The header fields llhttp interprets. As trailers they change its verdict after the body
 *  ("Connection: close" ends the connection, "Content-Length" is an error), so a trailer
 *  section with any of them is invalid. */
const FRAMING_FIELDS = new Set([
  "connection",
  "content-length",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
]);
const MAX_FRAMING_NAME = "transfer-encoding".length;

const METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE"];
const NONE: BodyFraming = Object.freeze({ kind: "none" });
const CHUNKED: BodyFraming = Object.freeze({ kind: "chunked" });
const CLOSE: BodyFraming = Object.freeze({ kind: "close" });

/** Scan results below 0: need more bytes / not acceptable. */
const NEED = -1;
const BAD = -2;

/** Field offsets of the head being parsed: name start, name end, value start, value end. */
const marks = new Int32Array(4 * MAX_FIELDS);

/** What the special header fields said, collected while scanning one head. */
class Fields {
  count = 0;
  /** -1: no Content-Length. */
  contentLength = -1;
  chunked = false;
  close = false;
  keepAlive = false;
  upgradeToken = false;
  /** A Connection header lists a name other than close, keep-alive and upgrade. */
  listsOthers = false;
  upgradeHeader = false;
  hosts = 0;
  expects = 0;
  expectContinue = false;
}

/** True when buf[s..e) equals `lower` ignoring ASCII case. Only for bytes already known to be
 *  tchar or field-value bytes: for those, `| 0x20` folds letters and nothing onto a letter,
 *  digit or '-'. */
export function equalsLower(buf: Buffer, s: number, e: number, lower: string): boolean {
  if (e - s !== lower.length) return false;
  for (let k = 0; k < lower.length; k++) {
    if ((buf[s + k]! | 0x20) !== lower.charCodeAt(k)) return false;
  }
  return true;
}

/** True when buf[s..e) equals `lower` (any tchar name, lower case) ignoring ASCII case. */
export function nameEquals(buf: Buffer, s: number, e: number, lower: string): boolean {
  if (e - s !== lower.length) return false;
  for (let k = 0; k < lower.length; k++) {
    const c = buf[s + k]!;
    const l = lower.charCodeAt(k);
    if (c !== l && !(c >= 0x41 && c <= 0x5a && c + 0x20 === l)) return false;
  }
  return true;
}

/** Content-Length: 1–16 digits, no sign, no leading zero, no list; the value, or -1. */
function contentLength(buf: Buffer, s: number, e: number): number {
  if (e === s || e - s > 16 || (buf[s] === 0x30 && e - s > 1)) return -1;
  let n = 0;
  for (let p = s; p < e; p++) {
    const d = buf[p]! - 0x30;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n <= Number.MAX_SAFE_INTEGER ? n : -1;
}

/** Connection: a comma list of tokens with optional spaces around the commas; false when the
 *  value is anything else (llhttp's reading of odd lists is its own: "close\t,x" is not close
 *  to it, though "x,\tclose" is). */
function connection(buf: Buffer, s: number, e: number, f: Fields): boolean {
  let p = s;
  for (;;) {
    const ts = p;
    while (p < e && TCHAR[buf[p]!] === 1) p++;
    if (p === ts) return false;
    if (equalsLower(buf, ts, p, "close")) f.close = true;
    else if (equalsLower(buf, ts, p, "keep-alive")) f.keepAlive = true;
    else if (equalsLower(buf, ts, p, "upgrade")) f.upgradeToken = true;
    else f.listsOthers = true;
    while (p < e && buf[p] === SP) p++;
    if (p === e) return true;
    if (buf[p] !== COMMA) return false;
    p++;
    while (p < e && buf[p] === SP) p++;
  }
}

/** Records what a special header field means; false when its value is not acceptable. `padded`:
 *  the value had a tab before it or whitespace after it. llhttp matches the special values on
 *  the raw bytes, and a trailing tab hides them ("Transfer-Encoding: chunked\t" is not chunked
 *  to llhttp, yet node:http trims the tab from the value it reports), so every header whose
 *  value llhttp interprets must come without padding. */
function classify(
  buf: Buffer,
  ns: number,
  ne: number,
  vs: number,
  ve: number,
  padded: boolean,
  f: Fields,
): boolean {
  switch (ne - ns) {
    case 4:
      if (equalsLower(buf, ns, ne, "host")) f.hosts++;
      return true;
    case 6:
      if (equalsLower(buf, ns, ne, "expect")) {
        if (padded) return false;
        f.expects++;
        f.expectContinue = equalsLower(buf, vs, ve, "100-continue");
      }
      return true;
    case 7:
      if (equalsLower(buf, ns, ne, "upgrade")) {
        if (ve === vs) return false;
        f.upgradeHeader = true;
      }
      return true;
    case 10:
      if (!equalsLower(buf, ns, ne, "connection")) return true;
      return !padded && connection(buf, vs, ve, f);
    case 14:
      if (!equalsLower(buf, ns, ne, "content-length")) return true;
      if (padded || f.contentLength !== -1 || f.chunked) return false;
      f.contentLength = contentLength(buf, vs, ve);
      return f.contentLength !== -1;
    case 16:
      // llhttp reads Proxy-Connection as Connection; nothing on the fast path sends it.
      return !equalsLower(buf, ns, ne, "proxy-connection");
    case 17:
      if (!equalsLower(buf, ns, ne, "transfer-encoding")) return true;
      if (padded || f.chunked || f.contentLength !== -1) return false;
      if (!equalsLower(buf, vs, ve, "chunked")) return false;
      f.chunked = true;
      return true;
    default:
      return true;
  }
}

/** Scans header fields from i up to end (the head's byte limit); returns the index after the
 *  blank line ending the head, NEED or BAD. Offsets go to `marks`, meanings to `f`. */
function scanFields(buf: Buffer, i: number, end: number, f: Fields): number {
  for (;;) {
    if (i >= end) return NEED;
    if (buf[i] === CR) {
      if (i + 1 >= end) return NEED;
      return buf[i + 1] === LF ? i + 2 : BAD;
    }
    const ns = i;
    while (i < end && TCHAR[buf[i]!] === 1) i++;
    if (i >= end) return NEED;
    if (buf[i] !== COLON || i === ns) return BAD;
    const ne = i++;
    let padded = false;
    for (; i < end && (buf[i] === SP || buf[i] === HTAB); i++) padded ||= buf[i] === HTAB;
    const vs = i;
    while (i < end && FIELD[buf[i]!] === 1) i++;
    if (i >= end) return NEED;
    if (buf[i] !== CR) return BAD;
    if (i + 1 >= end) return NEED;
    if (buf[i + 1] !== LF) return BAD;
    let ve = i;
    while (ve > vs && (buf[ve - 1] === SP || buf[ve - 1] === HTAB)) ve--;
    padded ||= ve !== i;
    i += 2;
    if (f.count === MAX_FIELDS || !classify(buf, ns, ne, vs, ve, padded, f)) return BAD;
    const m = 4 * f.count++;
    marks[m] = ns;
    marks[m + 1] = ne;
    marks[m + 2] = vs;
    marks[m + 3] = ve;
  }
}

/** The head decoded once (latin1: one char per byte), then sliced: one decode and cheap
 *  substrings instead of a Buffer decode per name and value. */
function rawHeaders(head: string, start: number, count: number): string[] {
  const out = new Array<string>(2 * count);
  for (let k = 0; k < count; k++) {
    const m = 4 * k;
    out[2 * k] = head.slice(marks[m]! - start, marks[m + 1]! - start);
    out[2 * k + 1] = head.slice(marks[m + 2]! - start, marks[m + 3]! - start);
  }
  return out;
}

/** "HTTP/1.0" or "HTTP/1.1" at i: the minor version, or -1. */
function version(buf: Buffer, i: number): number {
  if (
    buf[i] !== 0x48 ||
    buf[i + 1] !== 0x54 ||
    buf[i + 2] !== 0x54 ||
    buf[i + 3] !== 0x50 ||
    buf[i + 4] !== 0x2f ||
    buf[i + 5] !== 0x31 ||
    buf[i + 6] !== 0x2e
  ) {
    return -1;
  }
  const minor = buf[i + 7]! - 0x30;
  return minor === 0 || minor === 1 ? minor : -1;
}

/** The known method spelled by buf[s..e), or undefined. */
function method(buf: Buffer, s: number, e: number): string | undefined {
  for (const m of METHODS) {
    if (m.length !== e - s) continue;
    let k = 0;
    while (k < m.length && buf[s + k] === m.charCodeAt(k)) k++;
    if (k === m.length) return m;
  }
  return undefined;
}

/** NEED → "too-large" when the limit, not the buffer, ran out. */
function short(buf: Buffer, start: number, maxHeadBytes: number): "incomplete" | "too-large" {
  return buf.length - start >= maxHeadBytes ? "too-large" : "incomplete";
}

/** Parses the request head at buf[start..]. "incomplete": need more bytes (the head so far fits
 *  maxHeadBytes); "decline": not sure or not acceptable — node:http (llhttp) decides;
 *  "too-large": the head is longer than maxHeadBytes. Never throws. maxHeadBytes must not
 *  exceed node:http's own limit (16 KiB by default), which counts fewer bytes of a head. */
export function parseRequestHead(
  buf: Buffer,
  start: number,
  maxHeadBytes: number,
): RequestHead | "incomplete" | "decline" | "too-large" {
  const r = scanRequestHead(buf, start, maxHeadBytes);
  if (typeof r !== "object") return r;
  const head = buf.toString("latin1", start, start + r.headBytes);
  return {
    method: r.method,
    target: head.slice(r.targetStart - start, r.targetEnd - start),
    minor: r.minor,
    rawHeaders: rawHeaders(head, start, r.fieldCount),
    headBytes: r.headBytes,
    body: r.body,
    keepAlive: r.keepAlive,
    upgrade: r.upgrade,
    expectContinue: r.expectContinue,
  };
}

/** parseRequestHead's verdict without decoding anything (see RequestScan). */
export function scanRequestHead(
  buf: Buffer,
  start: number,
  maxHeadBytes: number,
): RequestScan | "incomplete" | "decline" | "too-large" {
  const end = Math.min(buf.length, start + maxHeadBytes);
  let i = start;
  while (i < end && TCHAR[buf[i]!] === 1) i++;
  if (i - start > 7) return "decline";
  if (i >= end) return short(buf, start, maxHeadBytes);
  if (buf[i] !== SP) return "decline";
  const m = method(buf, start, i);
  if (m === undefined) return "decline";
  const ts = ++i;
  if (i < end && buf[i] !== 0x2f) return "decline";
  while (i < end && TARGET[buf[i]!] === 1) i++;
  // "HTTP/1.x" CR LF
  if (i + 11 > end) {
    // A byte that cannot continue the line declines now, not once the limit is reached.
    if (i < end && buf[i] !== SP) return "decline";
    return short(buf, start, maxHeadBytes);
  }
  const te = i;
  const minor = buf[i] === SP ? version(buf, i + 1) : -1;
  if (minor < 0 || buf[i + 9] !== CR || buf[i + 10] !== LF) return "decline";
  const f = new Fields();
  const headEnd = scanFields(buf, i + 11, end, f);
  if (headEnd === NEED) return short(buf, start, maxHeadBytes);
  if (headEnd === BAD) return "decline";
  // node:http answers an HTTP/1.1 request without Host itself (400); Expect other than
  // 100-continue gets 417; several Host or Expect fields leave it to pick one.
  if (f.hosts > 1 || (minor === 1 && f.hosts === 0)) return "decline";
  if (f.expects > 1 || (f.expects === 1 && (minor === 0 || !f.expectContinue))) return "decline";
  // RFC 9112 §6.1: chunked in an HTTP/1.0 request is faulty framing.
  if (f.chunked && minor === 0) return "decline";
  if (f.close && f.keepAlive) return "decline";
  const upgrade = f.upgradeHeader && f.upgradeToken;
  const body: BodyFraming = f.chunked
    ? CHUNKED
    : f.contentLength > 0
      ? { kind: "length", length: f.contentLength }
      : NONE;
  // llhttp reads the body of an upgrade request before switching protocols; node:http's
  // handling of that is its own.
  if (upgrade && body !== NONE) return "decline";
  return {
    method: m,
    targetStart: ts,
    targetEnd: te,
    minor: minor as 0 | 1,
    start,
    headBytes: headEnd - start,
    fields: marks,
    fieldCount: f.count,
    connectionListsOthers: f.listsOthers,
    body,
    keepAlive: minor === 1 ? !f.close : f.keepAlive,
    upgrade,
    expectContinue: f.expects === 1,
  };
}

/** Parses the worker's response head at buf[start..] to a request made with requestMethod.
 *  "invalid": the worker sent something malformed or odd (the caller answers 502). Never
 *  throws. 1xx heads come back as they are (body none): 100 and 103 are interim, the caller
 *  parses the next head after them; 101 switches protocols. */
export function parseResponseHead(
  buf: Buffer,
  start: number,
  maxHeadBytes: number,
  requestMethod: string,
): ResponseHead | "incomplete" | "invalid" | "too-large" {
  const r = scanResponseHead(buf, start, maxHeadBytes, requestMethod);
  if (typeof r !== "object") return r;
  const head = buf.toString("latin1", start, start + r.headBytes);
  return {
    status: r.status,
    minor: r.minor,
    reason: head.slice(r.reasonStart - start, r.reasonEnd - start),
    rawHeaders: rawHeaders(head, start, r.fieldCount),
    headBytes: r.headBytes,
    body: r.body,
    keepAlive: r.keepAlive,
  };
}

/** parseResponseHead's verdict without decoding anything (see ResponseScan). */
export function scanResponseHead(
  buf: Buffer,
  start: number,
  maxHeadBytes: number,
  requestMethod: string,
): ResponseScan | "incomplete" | "invalid" | "too-large" {
  const end = Math.min(buf.length, start + maxHeadBytes);
  // "HTTP/1.x 200" and then " reason" or nothing, CR LF
  if (start + 14 > end) {
    const known = "HTTP/1.";
    for (let k = 0; k < known.length && start + k < end; k++) {
      if (buf[start + k] !== known.charCodeAt(k)) return "invalid";
    }
    return short(buf, start, maxHeadBytes);
  }
  const minor = version(buf, start);
  const d0 = buf[start + 9]! - 0x30;
  const d1 = buf[start + 10]! - 0x30;
  const d2 = buf[start + 11]! - 0x30;
  if (minor < 0 || buf[start + 8] !== SP || d0 < 1 || d0 > 5) return "invalid";
  if (d1 < 0 || d1 > 9 || d2 < 0 || d2 > 9) return "invalid";
  const status = d0 * 100 + d1 * 10 + d2;
  // 1xx beyond these: llhttp would frame them as final responses.
  if (status < 200 && status > 103) return "invalid";
  let i = start + 12;
  let rs = i;
  if (buf[i] === SP) {
    rs = ++i;
    while (i < end && FIELD[buf[i]!] === 1) i++;
  }
  const re = i;
  if (i >= end) return short(buf, start, maxHeadBytes);
  if (buf[i] !== CR) return "invalid";
  if (i + 1 >= end) return short(buf, start, maxHeadBytes);
  if (buf[i + 1] !== LF) return "invalid";
  const f = new Fields();
  const headEnd = scanFields(buf, i + 2, end, f);
  if (headEnd === NEED) return short(buf, start, maxHeadBytes);
  if (headEnd === BAD || (f.close && f.keepAlive)) return "invalid";
  let body: BodyFraming;
  if (status < 200 || status === 204 || status === 304) {
    if (f.chunked) return "invalid";
    body = NONE;
  } else if (requestMethod === "HEAD") body = NONE;
  else if (requestMethod === "CONNECT") return "invalid";
  else if (f.chunked) {
    if (minor === 0) return "invalid";
    body = CHUNKED;
  } else if (f.contentLength === 0) body = NONE;
  else if (f.contentLength > 0) body = { kind: "length", length: f.contentLength };
  else body = CLOSE;
  const keepAlive = minor === 1 ? !f.close : f.keepAlive;
  // An interim response is followed by the final one on the same connection, always.
  if (status < 200 && status !== 101 && !keepAlive) return "invalid";
  const readsToClose =
    status >= 200 && status !== 204 && status !== 304 && !f.chunked && f.contentLength === -1;
  return {
    status,
    minor: minor as 0 | 1,
    reasonStart: rs,
    reasonEnd: re,
    start,
    headBytes: headEnd - start,
    fields: marks,
    fieldCount: f.count,
    connectionListsOthers: f.listsOthers,
    body,
    // llhttp decides before it learns the answer was to HEAD: a HEAD response without a length
    // closes the connection (node:http's client agrees).
    keepAlive: keepAlive && !readsToClose,
  };
}

/** ChunkedFraming states, in line order: everything below SizeLf is the chunk-size line. */
const Chunk = {
  SizeFirst: 0,
  Size: 1,
  ExtNameFirst: 2,
  ExtName: 3,
  ExtValueFirst: 4,
  ExtToken: 5,
  ExtQuoted: 6,
  ExtQuotedPair: 7,
  ExtQuoteEnd: 8,
  SizeLf: 9,
  Data: 10,
  DataCr: 11,
  DataLf: 12,
  TrailerStart: 13,
  TrailerName: 14,
  TrailerValue: 15,
  TrailerLf: 16,
  EndLf: 17,
  Done: 18,
  Invalid: 19,
} as const;
type Chunk = (typeof Chunk)[keyof typeof Chunk];

/** Streaming chunked-body framing: tracks where a chunked body ends without changing the bytes
 *  (the proxy forwards them verbatim). Chunk extensions (`;name`, `;name=token`,
 *  `;name="quoted"`, no whitespace) and trailer fields are tolerated as llhttp tolerates them,
 *  except trailers llhttp would act on (FRAMING_FIELDS); anything else is "invalid". Sizes: at
 *  most 16 hex digits and a safe integer. */
export class ChunkedFraming {
  #state: Chunk = Chunk.SizeFirst;
  #size = 0;
  #digits = 0;
  #remaining = 0;
  #lineBytes = 0;
  #extensionBytes = 0;
  #trailerBytes = 0;
  /** The current trailer field's name, lower-cased (trailers are rare; this is not hot). */
  #trailerName = "";
  /** Where in the buffer of the last feed the trailer section is: from its first byte after
   *  the last-chunk line, or from the feed's start when it began before; -1: not in it. */
  trailerFrom = -1;
  /** The trailer section has fields (more than its final CRLF): see forward-headers.ts. */
  hasTrailers = false;

  /** Consumes from buf[start..]; returns the bytes that belong to this body (≤ buf.length -
   *  start) and whether the body ended with them; "invalid" on malformed framing (and on every
   *  call after that). */
  feed(buf: Buffer, start: number): { used: number; done: boolean } | "invalid" {
    if (this.#state === Chunk.Invalid) return "invalid";
    let i = start;
    const end = buf.length;
    let from = this.#state >= Chunk.TrailerStart && this.#state < Chunk.Done ? start : -1;
    while (i < end) {
      const state = this.#state;
      if (state === Chunk.Done) break;
      if (state === Chunk.Data) {
        const take = Math.min(this.#remaining, end - i);
        i += take;
        this.#remaining -= take;
        if (this.#remaining === 0) this.#state = Chunk.DataCr;
        continue;
      }
      const c = buf[i++]!;
      if (state < Chunk.SizeLf) {
        if (++this.#lineBytes > MAX_CHUNK_LINE) return this.#invalid();
        if (state >= Chunk.ExtNameFirst && ++this.#extensionBytes > MAX_EXTENSION_BYTES) {
          return this.#invalid();
        }
      } else if (state >= Chunk.TrailerStart && ++this.#trailerBytes > MAX_TRAILER_BYTES) {
        return this.#invalid();
      }
      if (!this.#step(state, c)) return this.#invalid();
      if (from < 0 && this.#state === Chunk.TrailerStart) from = i;
    }
    this.trailerFrom = from;
    return { used: i - start, done: this.#state === Chunk.Done };
  }

  #invalid(): "invalid" {
    this.#state = Chunk.Invalid;
    return "invalid";
  }

  /** One byte outside chunk data; false when it breaks the framing. */
  #step(state: Chunk, c: number): boolean {
    switch (state) {
      case Chunk.SizeFirst:
      case Chunk.Size: {
        const d = HEX[c]!;
        if (d >= 0) {
          if (++this.#digits > 16) return false;
          this.#size = this.#size * 16 + d;
          if (this.#size > Number.MAX_SAFE_INTEGER) return false;
          this.#state = Chunk.Size;
          return true;
        }
        if (state === Chunk.SizeFirst) return false;
        return this.#afterSize(c);
      }
      case Chunk.ExtNameFirst:
        if (TCHAR[c] !== 1) return false;
        this.#state = Chunk.ExtName;
        return true;
      case Chunk.ExtName:
        if (TCHAR[c] === 1) return true;
        if (c === EQUALS) {
          this.#state = Chunk.ExtValueFirst;
          return true;
        }
        return this.#afterSize(c);
      case Chunk.ExtValueFirst:
        if (c === DQUOTE) this.#state = Chunk.ExtQuoted;
        else if (TCHAR[c] === 1) this.#state = Chunk.ExtToken;
        else return false;
        return true;
      case Chunk.ExtToken:
        return TCHAR[c] === 1 || this.#afterSize(c);
      case Chunk.ExtQuoted:
        if (c === DQUOTE) this.#state = Chunk.ExtQuoteEnd;
        else if (c === BACKSLASH) this.#state = Chunk.ExtQuotedPair;
        else return QDTEXT[c] === 1;
        return true;
      case Chunk.ExtQuotedPair:
        this.#state = Chunk.ExtQuoted;
        return QPAIR[c] === 1;
      case Chunk.ExtQuoteEnd:
        return this.#afterSize(c);
      case Chunk.SizeLf:
        if (c !== LF) return false;
        if (this.#size === 0) {
          this.#state = Chunk.TrailerStart;
        } else {
          this.#remaining = this.#size;
          this.#state = Chunk.Data;
        }
        return true;
      case Chunk.DataCr:
        this.#state = Chunk.DataLf;
        return c === CR;
      case Chunk.DataLf:
        this.#state = Chunk.SizeFirst;
        this.#size = 0;
        this.#digits = 0;
        this.#lineBytes = 0;
        return c === LF;
      case Chunk.TrailerStart:
        if (c === CR) this.#state = Chunk.EndLf;
        else if (TCHAR[c] === 1) {
          this.hasTrailers = true;
          this.#state = Chunk.TrailerName;
          this.#trailerName = String.fromCharCode(c | 0x20);
        } else return false;
        return true;
      case Chunk.TrailerName:
        if (c === COLON) {
          this.#state = Chunk.TrailerValue;
          return !FRAMING_FIELDS.has(this.#trailerName);
        }
        if (this.#trailerName.length <= MAX_FRAMING_NAME) {
          this.#trailerName += String.fromCharCode(c | 0x20);
        }
        return TCHAR[c] === 1;
      case Chunk.TrailerValue:
        if (c === CR) this.#state = Chunk.TrailerLf;
        else return FIELD[c] === 1;
        return true;
      case Chunk.TrailerLf:
        this.#state = Chunk.TrailerStart;
        return c === LF;
      case Chunk.EndLf:
        this.#state = Chunk.Done;
        return c === LF;
      default:
        return false;
    }
  }

  /** After the size or a complete extension: another extension or the line's end. */
  #afterSize(c: number): boolean {
    if (c === SEMI) this.#state = Chunk.ExtNameFirst;
    else if (c === CR) this.#state = Chunk.SizeLf;
    else return false;
    return true;
  }
}
