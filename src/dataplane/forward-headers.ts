// node:http's path applies the header rules (header-rules.ts) to raw header arrays, so names
// keep their case, order and duplicates: the request for the worker (plain HTTP, a WebSocket
// handshake and a declined upgrade), the response for the client, and the trailer fields after
// a chunked body on either path (trailerSection rewrites a held trailer section with
// requestTrailersForWorker or responseHeadersForClient; node:http's path passes none on: it
// drops them all). Pure functions.
//
// The fast path applies the same rules to a scanned head's bytes (fast/head-rewrite.ts); its
// spec checks it writes exactly what headBlock of these functions' output would.

import {
  connectionListed,
  dropsToClient,
  dropsToWorker,
  dropsTrailerToWorker,
  fieldsOfOurs,
  notToWorker,
  Rule,
  ruleOf,
  scrubReferer,
  setsHerdCookie,
  type ToWorker,
} from "./header-rules.ts";

/** Raw request headers for the worker. */
export function requestHeadersForWorker(raw: readonly string[], to: ToWorker): string[] {
  const listed = connectionListed(raw);
  const drops = notToWorker(to);
  const out: string[] = [];
  let forwardedFor: string | undefined;
  let host: string | undefined;
  let upgrade: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    const lower = name.toLowerCase();
    const rule = ruleOf(lower);
    if (rule === Rule.Host) host = value;
    else if (rule === Rule.Upgrade) upgrade = value;
    else if (rule === Rule.ForwardedFor) {
      forwardedFor = forwardedFor === undefined ? value : `${forwardedFor}, ${value}`;
    }
    if (dropsToWorker(rule, listed?.has(lower) ?? false, drops)) continue;
    out.push(name, rule === Rule.Referer ? scrubReferer(value) : value);
  }
  out.push(...fieldsOfOurs(to, forwardedFor, host, upgrade));
  return out;
}

/** Raw request trailer fields for the worker: the header rules, and no field of herd's. */
export function requestTrailersForWorker(raw: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const rule = ruleOf(raw[i]!.toLowerCase());
    if (dropsTrailerToWorker(rule)) continue;
    out.push(raw[i]!, rule === Rule.Referer ? scrubReferer(raw[i + 1]!) : raw[i + 1]!);
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
    const rule = ruleOf(lower);
    if (dropsToClient(rule, listed?.has(lower) ?? false, upgrade)) continue;
    if (rule === Rule.SetCookie && setsHerdCookie(raw[i + 1]!)) continue;
    out.push(name, raw[i + 1]!);
  }
  return out;
}

/** A message head as written on the wire (latin1): start line, headers, the empty line. */
export function headBlock(startLine: string, raw: readonly string[]): string {
  return `${startLine}\r\n${fieldLines(raw)}\r\n`;
}

/** `name: value` CRLF for each pair of `raw`. */
export function fieldLines(raw: readonly string[]): string {
  let text = "";
  for (let i = 0; i < raw.length; i += 2) text += `${raw[i]}: ${raw[i + 1]}\r\n`;
  return text;
}
