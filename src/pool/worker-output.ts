// Reads a worker's stdout and stderr into its OutputRing at a bounded cost to the daemon.
//
// A worker may print as fast as it can. Each chunk costs the daemon a read and a copy, so an
// unpaced reader would spend up to a core on one noisy worker. The reader keeps a byte budget
// per window (OUTPUT_BYTES_PER_SECOND, in WINDOW_MS slices): once a window's budget is spent
// it pauses the worker's pipes until the next window, so the kernel's pipe buffer fills and
// the worker's own writes block (the same back-pressure a slow terminal applies). Chunks arrive
// as libuv reads them, up to 64 KiB: after a pause the pipe is full and every read is a full
// one. Invariant: while attached, the streams are paused only by this budget, and resumed
// within one window. Single-threaded.

import type { Readable } from "node:stream";
import { OutputRing } from "./output-ring.ts";

/** What a worker may print per second before the daemon slows its reading. */
export const OUTPUT_BYTES_PER_SECOND = 4 * 2 ** 20;
const WINDOW_MS = 100;

export class WorkerOutput {
  readonly ring: OutputRing;
  private readonly budget: number;
  private windowStart = 0;
  private spent = 0;
  private resumeTimer: NodeJS.Timeout | undefined;
  private readonly streams: Readable[] = [];

  constructor(capacity: number, bytesPerSecond = OUTPUT_BYTES_PER_SECOND) {
    this.ring = new OutputRing(capacity);
    this.budget = Math.max(1, Math.round((bytesPerSecond * WINDOW_MS) / 1_000));
  }

  /** Feeds each chunk of `stream` to the ring, then to `onChunk` (readiness, stderr tail). */
  attach(stream: Readable | null | undefined, onChunk: (chunk: Buffer) => void): void {
    if (!stream) return;
    this.streams.push(stream);
    stream.on("data", (chunk: Buffer) => {
      this.ring.write(chunk);
      onChunk(chunk);
      this.spend(chunk.length);
    });
  }

  /** Stops pacing (the tree is gone); the streams flow to their end. */
  detach(): void {
    clearTimeout(this.resumeTimer);
    this.resumeTimer = undefined;
    for (const s of this.streams.splice(0)) s.resume();
  }

  /** Stops reading (the tree is handed to a successor daemon, which reads on). */
  release(): void {
    clearTimeout(this.resumeTimer);
    this.resumeTimer = undefined;
    for (const s of this.streams.splice(0)) {
      s.removeAllListeners("data");
      s.pause();
    }
  }

  private spend(bytes: number): void {
    const now = performance.now();
    if (now - this.windowStart >= WINDOW_MS) {
      this.windowStart = now;
      this.spent = 0;
    }
    this.spent += bytes;
    if (this.spent < this.budget || this.resumeTimer) return;
    for (const s of this.streams) s.pause();
    this.resumeTimer = setTimeout(
      () => {
        this.resumeTimer = undefined;
        this.windowStart = performance.now();
        this.spent = 0;
        for (const s of this.streams) s.resume();
      },
      Math.max(1, WINDOW_MS - (now - this.windowStart)),
    );
    this.resumeTimer.unref();
  }
}
