// A worker's output (stdout and stderr, interleaved as they arrive) in a bounded ring of bytes,
// and the view of it a session may read.
//
// Invariant: memory stays at most `capacity` bytes whatever the worker prints (the buffer grows
// by doubling up to it, so an idle, quiet worker costs little). Every byte has an offset: the
// count of bytes written before it, so a reader names "from where" independently of what the
// ring has dropped since. A session's view starts at the offset its session began at
// (`begin`): with `reuse: true` one worker serves several sessions in turn, and no session may
// read what an earlier tenant's processes printed. Single-threaded; listeners are called
// synchronously from `write` and must not throw.

import type { SessionLogs } from "../core/index.ts";

const INITIAL_BYTES = 4_096;

export class OutputRing {
  private buffer = Buffer.alloc(0);
  /** Offset of the next byte written; the ring holds [written - stored, written). */
  private written = 0;
  private stored = 0;
  private readonly listeners = new Set<(chunk: Buffer, offset: number) => void>();

  constructor(readonly capacity: number) {}

  /** Offset of the next byte the worker writes. */
  get end(): number {
    return this.written;
  }

  write(chunk: Buffer): void {
    const offset = this.written;
    const keep = chunk.length > this.capacity ? chunk.subarray(-this.capacity) : chunk;
    this.grow(Math.min(this.capacity, this.stored + keep.length));
    const size = this.buffer.length;
    let at = (offset + chunk.length - keep.length) % size;
    let from = 0;
    while (from < keep.length) {
      const n = Math.min(keep.length - from, size - at);
      keep.copy(this.buffer, at, from, from + n);
      from += n;
      at = (at + n) % size;
    }
    this.written = offset + chunk.length;
    this.stored = Math.min(size, this.stored + keep.length);
    for (const listener of this.listeners) listener(chunk, offset);
  }

  /** The bytes still held from `offset` on (from the oldest held, if `offset` was dropped). */
  read(offset: number): Buffer {
    const from = Math.max(offset, this.written - this.stored);
    const n = this.written - from;
    if (n <= 0) return Buffer.alloc(0);
    const size = this.buffer.length;
    const at = from % size;
    const first = Math.min(n, size - at);
    const out = Buffer.allocUnsafe(n);
    this.buffer.copy(out, 0, at, at + first);
    if (first < n) this.buffer.copy(out, first, 0, n - first);
    return out;
  }

  /** Calls `listener` with every chunk written from now on; returns the unsubscribe. */
  subscribe(listener: (chunk: Buffer, offset: number) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Doubles the buffer (re-laid out from offset 0 of the ring's positions) up to `need`. */
  private grow(need: number): void {
    if (need <= this.buffer.length) return;
    let size = Math.max(this.buffer.length, INITIAL_BYTES);
    while (size < need) size *= 2;
    size = Math.min(size, this.capacity);
    const held = this.read(this.written - this.stored);
    const next = Buffer.alloc(size);
    // Positions are offsets modulo the size: place the held bytes where they now belong.
    const start = (this.written - this.stored) % size;
    const first = Math.min(held.length, size - start);
    held.copy(next, start, 0, first);
    if (first < held.length) held.copy(next, 0, first);
    this.buffer = next;
  }
}

export function sessionLogs(ring: OutputRing, begin: number, ended: AbortSignal): SessionLogs {
  return {
    ended,
    read: () => (ended.aborted ? Buffer.alloc(0) : ring.read(begin)),
    follow(listener) {
      if (ended.aborted) return () => {};
      const stop = ring.subscribe((chunk) => {
        if (!ended.aborted) listener(chunk);
      });
      ended.addEventListener("abort", stop, { once: true });
      return () => {
        stop();
        ended.removeEventListener("abort", stop);
      };
    },
  };
}
