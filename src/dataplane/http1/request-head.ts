// The strict request-head parser of the data plane's hot path, which reads raw bytes and must
// know where each request ends. Pure; no I/O.
//
// Invariant: parseRequestHead accepts only what llhttp in Node's default strict mode accepts,
// identically: same method, target, version, header list, body framing, keep-alive and upgrade
// verdict, and nothing node:http's server would then refuse (an HTTP/1.1 request without Host).
// Whatever it is not sure of it declines, and the caller hands the connection to node:http,
// whose verdict stands: a byte sequence on which the two could disagree about where a request
// ends (request smuggling) never takes the fast path. request-head.spec.ts checks it against
// llhttp itself (differential fuzz). Shares head-fields.ts's scratch: see there.

import * as bytes from "./bytes.ts";
import {
  BAD,
  type BodyFraming,
  CHUNKED,
  Fields,
  marks,
  NEED,
  NONE,
  rawHeaders,
  type ScannedHead,
  scanFields,
  short,
  version,
} from "./head-fields.ts";

// Module-local bindings for the per-byte loops (see bytes.ts).
const { CR, LF, SP, TARGET, TCHAR } = bytes;

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

/** parseRequestHead's verdict, scanned (see ScannedHead). */
export interface RequestScan extends ScannedHead {
  method: string;
  /** The request target is buf[targetStart..targetEnd). */
  targetStart: number;
  targetEnd: number;
  upgrade: boolean;
  expectContinue: boolean;
}

const METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE"];

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
