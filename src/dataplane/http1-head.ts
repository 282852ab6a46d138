// PROVISIONAL (branch fast-path): a minimal stand-in with exactly the interface of the strict
// HTTP/1.1 head parsers that branch fast-head builds; that file replaces this one at merge.
// Invariant it shares with the real one: it accepts only what llhttp (strict mode) accepts,
// identically; anything it is not sure of is declined (requests) or invalid (responses).
// Pure; no I/O.

export type BodyFraming =
  | { kind: "none" }
  | { kind: "length"; length: number }
  | { kind: "chunked" }
  | { kind: "close" };

export interface RequestHead {
  method: string;
  target: string;
  minor: 0 | 1;
  rawHeaders: string[];
  headBytes: number;
  body: BodyFraming;
  keepAlive: boolean;
  upgrade: boolean;
  expectContinue: boolean;
}

export interface ResponseHead {
  status: number;
  minor: 0 | 1;
  reason: string;
  rawHeaders: string[];
  headBytes: number;
  body: BodyFraming;
  keepAlive: boolean;
}

const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE"]);
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Field values: visible ASCII, SP, HTAB, obs-text; no other control characters.
const VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
const TARGET = /^\/[\x21-\x7e]*$/;
const NONE: BodyFraming = { kind: "none" };

interface Fields {
  rawHeaders: string[];
  length: number | undefined;
  chunked: boolean;
  close: boolean;
  keepAliveToken: boolean;
  upgradeToken: boolean;
  upgradeHeader: boolean;
  expectContinue: boolean;
}

/** End of the head (index after CRLF CRLF), or a verdict. */
function headEnd(buf: Buffer, start: number, max: number): number | "incomplete" | "too-large" {
  const end = buf.indexOf("\r\n\r\n", start, "latin1");
  if (end < 0) return buf.length - start > max ? "too-large" : "incomplete";
  return end + 4 - start > max ? "too-large" : end + 4;
}

/** Header lines → fields; undefined when anything is odd. */
function fields(lines: string[]): Fields | undefined {
  const f: Fields = {
    rawHeaders: [],
    length: undefined,
    chunked: false,
    close: false,
    keepAliveToken: false,
    upgradeToken: false,
    upgradeHeader: false,
    expectContinue: false,
  };
  let te = false;
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon <= 0) return undefined;
    const name = line.slice(0, colon);
    if (!TOKEN.test(name)) return undefined;
    const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, "");
    if (!VALUE.test(value)) return undefined;
    f.rawHeaders.push(name, value);
    const lower = name.toLowerCase();
    if (lower === "content-length") {
      if (f.length !== undefined || !/^[0-9]{1,15}$/.test(value)) return undefined;
      f.length = Number(value);
    } else if (lower === "transfer-encoding") {
      if (te || value.toLowerCase() !== "chunked") return undefined;
      te = true;
      f.chunked = true;
    } else if (lower === "connection") {
      for (const token of value.toLowerCase().split(",")) {
        const t = token.trim();
        if (t === "close") f.close = true;
        else if (t === "keep-alive") f.keepAliveToken = true;
        else if (t === "upgrade") f.upgradeToken = true;
      }
    } else if (lower === "upgrade") f.upgradeHeader = true;
    else if (lower === "expect" && value.toLowerCase() === "100-continue") f.expectContinue = true;
  }
  if (f.chunked && f.length !== undefined) return undefined;
  if (f.close && f.keepAliveToken) return undefined;
  return f;
}

function lines(buf: Buffer, start: number, end: number): string[] | undefined {
  const text = buf.toString("latin1", start, end - 4);
  const out = text.split("\r\n");
  for (const line of out) {
    if (line.includes("\r") || line.includes("\n") || line.includes("\0")) return undefined;
    if (line.startsWith(" ") || line.startsWith("\t")) return undefined;
  }
  return out;
}

export function parseRequestHead(
  buf: Buffer,
  start: number,
  maxHeadBytes: number,
): RequestHead | "incomplete" | "decline" | "too-large" {
  const end = headEnd(buf, start, maxHeadBytes);
  if (typeof end !== "number") return end;
  const all = lines(buf, start, end);
  if (all === undefined) return "decline";
  const m = /^([A-Z]+) (\S+) HTTP\/1\.([01])$/.exec(all[0]!);
  if (m === null || !METHODS.has(m[1]!) || !TARGET.test(m[2]!)) return "decline";
  const f = fields(all.slice(1));
  if (f === undefined) return "decline";
  const minor = m[3] === "1" ? 1 : 0;
  return {
    method: m[1]!,
    target: m[2]!,
    minor,
    rawHeaders: f.rawHeaders,
    headBytes: end - start,
    body: f.chunked
      ? { kind: "chunked" }
      : f.length !== undefined && f.length > 0
        ? { kind: "length", length: f.length }
        : NONE,
    keepAlive: minor === 1 ? !f.close : f.keepAliveToken,
    upgrade: f.upgradeHeader,
    expectContinue: f.expectContinue,
  };
}

export function parseResponseHead(
  buf: Buffer,
  start: number,
  maxHeadBytes: number,
  requestMethod: string,
): ResponseHead | "incomplete" | "invalid" | "too-large" {
  const end = headEnd(buf, start, maxHeadBytes);
  if (typeof end !== "number") return end;
  const all = lines(buf, start, end);
  if (all === undefined) return "invalid";
  const m = /^HTTP\/1\.([01]) ([1-9][0-9]{2})(?: ([\t\x20-\x7e\x80-\xff]*))?$/.exec(all[0]!);
  if (m === null) return "invalid";
  const f = fields(all.slice(1));
  if (f === undefined) return "invalid";
  const status = Number(m[2]);
  const minor = m[1] === "1" ? 1 : 0;
  let body: BodyFraming;
  if (status < 200 || status === 204 || status === 304 || requestMethod === "HEAD") body = NONE;
  else if (f.chunked) body = { kind: "chunked" };
  else if (f.length !== undefined)
    body = f.length > 0 ? { kind: "length", length: f.length } : NONE;
  else body = { kind: "close" };
  return {
    status,
    minor,
    reason: m[3] ?? "",
    rawHeaders: f.rawHeaders,
    headBytes: end - start,
    body,
    keepAlive: body.kind !== "close" && (minor === 1 ? !f.close : f.keepAliveToken),
  };
}

const HEX: Record<string, number> = {};
for (let i = 0; i < 16; i++) {
  HEX[i.toString(16)] = i;
  HEX[i.toString(16).toUpperCase()] = i;
}

/** Streaming chunked-body framing: finds where a chunked body ends, bytes unchanged. */
export class ChunkedFraming {
  #state: "size" | "ext" | "size-lf" | "data" | "data-cr" | "data-lf" | "trailer" | "done" = "size";
  #size = 0;
  #digits = 0;
  #remaining = 0;
  /** Bytes of the current trailer line (0: the empty line that ends the body). */
  #line = 0;
  #trailerCr = false;

  feed(buf: Buffer, start: number): { used: number; done: boolean } | "invalid" {
    let i = start;
    while (i < buf.length) {
      if (this.#state === "done") break;
      const c = buf[i]!;
      switch (this.#state) {
        case "size": {
          const d = HEX[String.fromCharCode(c)];
          if (d !== undefined) {
            if (++this.#digits > 13) return "invalid";
            this.#size = this.#size * 16 + d;
          } else if (this.#digits === 0) return "invalid";
          else if (c === 0x3b) this.#state = "ext";
          else if (c === 0x0d) this.#state = "size-lf";
          else return "invalid";
          i++;
          break;
        }
        case "ext":
          if (c === 0x0d) this.#state = "size-lf";
          else if (c === 0x0a || c === 0 || (c < 0x20 && c !== 0x09)) return "invalid";
          i++;
          break;
        case "size-lf":
          if (c !== 0x0a) return "invalid";
          i++;
          if (this.#size === 0) {
            this.#state = "trailer";
            this.#line = 0;
            this.#trailerCr = false;
          } else {
            this.#remaining = this.#size;
            this.#state = "data";
          }
          break;
        case "data": {
          const take = Math.min(this.#remaining, buf.length - i);
          i += take;
          this.#remaining -= take;
          if (this.#remaining === 0) this.#state = "data-cr";
          break;
        }
        case "data-cr":
          if (c !== 0x0d) return "invalid";
          this.#state = "data-lf";
          i++;
          break;
        case "data-lf":
          if (c !== 0x0a) return "invalid";
          this.#state = "size";
          this.#size = 0;
          this.#digits = 0;
          i++;
          break;
        case "trailer":
          i++;
          if (this.#trailerCr) {
            if (c !== 0x0a) return "invalid";
            if (this.#line === 0) {
              this.#state = "done";
              return { used: i - start, done: true };
            }
            this.#line = 0;
            this.#trailerCr = false;
          } else if (c === 0x0d) this.#trailerCr = true;
          else if (c === 0x0a || c === 0) return "invalid";
          else this.#line++;
          break;
      }
    }
    return { used: i - start, done: this.#state === "done" };
  }
}
