// The fast path applies the header rules (header-rules.ts) on the bytes of a scanned head
// rather than on decoded strings: the request head for the worker (workerRequestHead) and the
// response head for the client (clientResponseHead), its per-request cost. Each field is judged
// by the same rules as on node:http's path (forward-headers.ts), its name compared on the
// bytes; runs of kept fields already written "name: value" are passed on whole.
//
// Invariant: the output is byte for byte what headBlock of forward-headers.ts's functions
// would write for the same head (head-rewrite.spec.ts checks it on generated heads). Pure.

import { fieldLines } from "../forward-headers.ts";
import {
  connectionListed,
  dropsToClient,
  dropsToWorker,
  fieldsOfOurs,
  notToWorker,
  Rule,
  ruleOfBytes,
  scrubReferer,
  setsHerdCookie,
  type ToWorker,
} from "../header-rules.ts";
import { COLON, CR, equalsLower, LF, SP } from "../http1/bytes.ts";
import type { RequestScan } from "../http1/request-head.ts";
import type { ResponseScan } from "../http1/response-head.ts";

const STATUS_LINE_START = Buffer.from("HTTP/1.1 ", "latin1");

type ScannedFields = Pick<ResponseScan, "fields" | "fieldCount" | "connectionListsOthers">;

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

/** Does the head's Connection header list the name buf[ns..ne)? */
function listedIn(listed: Set<string> | undefined, buf: Buffer, ns: number, ne: number): boolean {
  return listed?.has(buf.toString("latin1", ns, ne).toLowerCase()) ?? false;
}

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
    const rule = ruleOfBytes(buf, ns, ne);
    const dropped =
      dropsToClient(rule, listedIn(listed, buf, ns, ne), false) ||
      (rule === Rule.SetCookie && setsHerdCookie(buf.toString("latin1", vs, ve)));
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
  const drops = notToWorker(to);
  const { fields, fieldCount, start } = scan;
  let out = `${scan.method} ${path} HTTP/1.1\r\n`;
  let forwardedFor: string | undefined;
  let host: string | undefined;
  let upgrade: string | undefined;
  const fieldsEnd = scan.headBytes - 2;
  /** Start (in text) of the verbatim lines not added yet, or -1. */
  let run = -1;
  for (let k = 0; k < fieldCount; k++) {
    const m = 4 * k;
    const ns = fields[m]!;
    const ne = fields[m + 1]!;
    const vs = fields[m + 2]!;
    const ve = fields[m + 3]!;
    const rule = ruleOfBytes(buf, ns, ne);
    if (rule === Rule.Host) host = text.slice(vs - start, ve - start);
    else if (rule === Rule.Upgrade) upgrade = text.slice(vs - start, ve - start);
    else if (rule === Rule.ForwardedFor) {
      const sent = text.slice(vs - start, ve - start);
      forwardedFor = forwardedFor === undefined ? sent : `${forwardedFor}, ${sent}`;
    }
    const dropped = dropsToWorker(rule, listedIn(listed, buf, ns, ne), drops);
    let value: string | undefined;
    if (!dropped && rule === Rule.Referer) {
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
  return `${out}${fieldLines(fieldsOfOurs(to, forwardedFor, host, upgrade))}${fieldLines(extra)}\r\n`;
}
