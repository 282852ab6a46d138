// The strict response-head parser of the data plane's hot path: where the worker's answer to a
// request starts its body and how that body is framed. Pure; no I/O.
//
// Invariant: the same strictness as request-head.ts (a head it accepts, llhttp reads alike:
// response-head.spec.ts checks that by differential fuzz), but a response comes from a worker,
// which may be hostile, and there is no one to hand it to: anything odd is "invalid" (the
// caller answers 502). Shares head-fields.ts's scratch: see there.

import * as bytes from "./bytes.ts";
import {
  BAD,
  type BodyFraming,
  CHUNKED,
  CLOSE,
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
const { CR, FIELD, LF, SP } = bytes;

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

/** parseResponseHead's verdict, scanned (see ScannedHead). */
export interface ResponseScan extends ScannedHead {
  status: number;
  /** The reason phrase is buf[reasonStart..reasonEnd). */
  reasonStart: number;
  reasonEnd: number;
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
