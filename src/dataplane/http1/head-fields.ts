// Header-field scanning shared by the strict request and response parsers (request-head.ts,
// response-head.ts): the field lines of a head, their offsets, and what the fields llhttp
// interprets (Content-Length, Transfer-Encoding, Connection, Host, Expect, Upgrade) say about
// the message's framing. Whatever llhttp might read differently is refused here.
//
// Concurrency: both parsers share one module-level scratch array of field offsets (`marks`);
// they are synchronous and never re-entered, so that is safe. A scan's `fields` is that array:
// valid until the next parse call.

import * as bytes from "./bytes.ts";

// Module-local bindings for the per-byte loops (see bytes.ts).
const { COLON, COMMA, CR, equalsLower, FIELD, HTAB, LF, SP, TCHAR } = bytes;

export type BodyFraming =
  | { kind: "none" }
  /** Content-Length, a safe integer > 0 (Content-Length: 0 is "none"). */
  | { kind: "length"; length: number }
  /** Transfer-Encoding: chunked, the only transfer coding accepted. */
  | { kind: "chunked" }
  /** Responses only: the body runs until the worker closes the connection. */
  | { kind: "close" };

/**
 * A head as offsets into the scanned buffer, nothing decoded: what the fast path routes and
 * rewrites on the bytes. `fields` is the parsers' shared scratch (name start, name end, value
 * start, value end per field, values OWS-trimmed): valid until the next parse call.
 */
export interface ScannedHead {
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

/** More header fields than any browser or client sends; beyond it, node:http decides. */
const MAX_FIELDS = 256;
export const NONE: BodyFraming = Object.freeze({ kind: "none" });
export const CHUNKED: BodyFraming = Object.freeze({ kind: "chunked" });
export const CLOSE: BodyFraming = Object.freeze({ kind: "close" });

/** Scan results below 0: need more bytes / not acceptable. */
export const NEED = -1;
export const BAD = -2;

/** Field offsets of the head being parsed: name start, name end, value start, value end. */
export const marks = new Int32Array(4 * MAX_FIELDS);

/** What the special header fields said, collected while scanning one head. */
export class Fields {
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
export function scanFields(buf: Buffer, i: number, end: number, f: Fields): number {
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
export function rawHeaders(head: string, start: number, count: number): string[] {
  const out = new Array<string>(2 * count);
  for (let k = 0; k < count; k++) {
    const m = 4 * k;
    out[2 * k] = head.slice(marks[m]! - start, marks[m + 1]! - start);
    out[2 * k + 1] = head.slice(marks[m + 2]! - start, marks[m + 3]! - start);
  }
  return out;
}

/** "HTTP/1.0" or "HTTP/1.1" at i: the minor version, or -1. */
export function version(buf: Buffer, i: number): number {
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

/** NEED → "too-large" when the limit, not the buffer, ran out. */
export function short(
  buf: Buffer,
  start: number,
  maxHeadBytes: number,
): "incomplete" | "too-large" {
  return buf.length - start >= maxHeadBytes ? "too-large" : "incomplete";
}
