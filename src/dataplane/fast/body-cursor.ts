// The framing state of one message body in flight on the fast path (fast-exchange.ts): how
// many bytes of each read belong to the body, by its framing (Content-Length, chunked, or the
// worker's close), and what to pass on for them — the bytes verbatim, but a chunked body's
// trailer section held until it ends and then passed on rewritten by the header rules.
//
// Invariant: it never counts a byte past the body's framing, and once the body ended it takes
// nothing more. Each BodyCursor belongs to one body of one exchange; single-threaded.

import { trailerSection } from "../forward-headers.ts";
import { ChunkedFraming } from "../http1/chunked-framing.ts";
import type { BodyFraming } from "../http1/head-fields.ts";

export class BodyCursor {
  readonly #chunked: ChunkedFraming | undefined;
  #remaining: number;
  #open: boolean;
  /** A trailer section with fields, held until its end (chunked bodies only). */
  #held: Buffer[] | undefined;

  /** `trailers`: the rule a chunked body's trailer fields pass by (forward-headers.ts). */
  constructor(
    framing: BodyFraming,
    readonly trailers: (raw: readonly string[]) => string[],
  ) {
    this.#chunked = framing.kind === "chunked" ? new ChunkedFraming() : undefined;
    this.#remaining = framing.kind === "length" ? framing.length : 0;
    this.#open = framing.kind === "close" || this.#chunked !== undefined || this.#remaining > 0;
  }

  get done(): boolean {
    return !this.#open;
  }

  /** How many leading bytes of `chunk` belong to the body; "invalid": malformed chunks. */
  take(chunk: Buffer): number | "invalid" {
    if (!this.#open) return 0;
    if (this.#chunked) {
      const r = this.#chunked.feed(chunk, 0);
      if (r === "invalid") return r;
      if (r.done) this.#open = false;
      return r.used;
    }
    if (this.#remaining === 0) return chunk.length; // "close": everything until the worker's FIN
    const n = Math.min(this.#remaining, chunk.length);
    this.#remaining -= n;
    if (this.#remaining === 0) this.#open = false;
    return n;
  }

  /**
   * What to pass on for the `n` leading bytes of `chunk` take() just counted: those bytes, but
   * a trailer section with fields is held until it ends and then passed on rewritten.
   */
  outgoing(chunk: Buffer, n: number): Buffer {
    const part = n === chunk.length ? chunk : chunk.subarray(0, n);
    const framing = this.#chunked;
    if (framing === undefined || !framing.hasTrailers) return part;
    const from = framing.trailerFrom;
    // A copy: the read buffer under `chunk` may be reused for the next read.
    this.#held ??= [];
    this.#held.push(Buffer.from(part.subarray(from)));
    const before = part.subarray(0, from);
    if (this.#open) return before;
    const section = trailerSection(Buffer.concat(this.#held), this.trailers);
    return Buffer.concat([before, section]);
  }
}
