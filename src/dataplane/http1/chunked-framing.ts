// Streaming chunked-body framing for the data plane's hot path: where a chunked body ends, in
// bytes split anywhere, without changing them (the proxy forwards them verbatim). Pure; no I/O.
//
// Invariant: ChunkedFraming accepts a subset of llhttp's chunked grammar, so it never finds a
// body's end where llhttp would not (chunked-framing.spec.ts checks it against llhttp, split at
// every offset); a trailer llhttp would act on is refused. Concurrency: each ChunkedFraming
// belongs to one body.

import * as bytes from "./bytes.ts";

// Module-local bindings for the per-byte loops (see bytes.ts).
const { BACKSLASH, COLON, CR, DQUOTE, EQUALS, FIELD, HEX, LF, QDTEXT, QPAIR, SEMI, TCHAR } = bytes;

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
