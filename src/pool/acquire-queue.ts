// A pool's acquire queue: the acquires waiting for a worker while the pool is at max, served in
// arrival order (FIFO), each with its own way out.
//
// Invariants:
//   - a waiter leaves the queue exactly once: served, failed, or withdrawn by its signal;
//   - a waiter is served or removed synchronously: `serve` runs the oldest waiter's `take` (which
//     binds the worker to its session) in the same tick the waiter leaves the queue, and a
//     waiter whose signal aborts is spliced out before it can be served — so no worker is ever
//     handed to nobody;
//   - admission (`refusal`): an acquire is refused at once when `queue_limit` waiters more than
//     the workers that are idle, starting or may still start (`room`) already wait, and when it
//     will not wait (waitMs 0) and `room` waiters already wait;
//   - the depth is reported at most once per tick, and only when it changed. Failures (a start
//     that failed, shutdown) report nothing themselves: the pump after a failed start reports,
//     and a closed pool reports no more.
//
// Concurrency: single-threaded; every method is synchronous, and the only deferred step is the
// depth report (a microtask).

import type { PoolOptions } from "../core/index.ts";
import { HerdError } from "../core/index.ts";

interface Waiter<W> {
  take(worker: W): void;
  fail(error: unknown): void;
}

export class AcquireQueue<W> {
  private readonly waiters: Waiter<W>[] = [];
  private lastReported = 0;
  private report: Promise<void> | undefined;

  constructor(
    private readonly options: Pick<PoolOptions, "name" | "max" | "queueLimit">,
    /** Called with the new depth, once per tick at most. */
    private readonly depthChanged: (queued: number) => void,
  ) {}

  get length(): number {
    return this.waiters.length;
  }

  /** Why an acquire may not queue, with `room` workers idle, starting or yet to start; else undefined. */
  refusal(room: number, waitMs: number | undefined): HerdError | undefined {
    const ahead = this.waiters.length;
    if (ahead < room + this.options.queueLimit && !(waitMs === 0 && ahead >= room)) {
      return undefined;
    }
    return new HerdError(
      "resource_exhausted",
      `pool ${this.options.name} is at max (${this.options.max} workers) with ${ahead} acquires queued (queue_limit ${this.options.queueLimit})`,
    );
  }

  /**
   * Queues an acquire. Resolves with what `take` returns, run in the tick a worker is handed to
   * it; rejects with the signal's reason once it aborts while still queued, or with the error
   * a failure hands it.
   */
  wait<T>(take: (worker: W) => T, signal: AbortSignal): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const waiter: Waiter<W> = {
        take: (worker) => {
          signal.removeEventListener("abort", withdraw);
          resolve(take(worker));
        },
        fail: (error) => {
          signal.removeEventListener("abort", withdraw);
          reject(error);
        },
      };
      const withdraw = () => {
        const index = this.waiters.indexOf(waiter);
        if (index >= 0) this.waiters.splice(index, 1);
        this.reportDepth();
        reject(signal.reason);
      };
      signal.addEventListener("abort", withdraw, { once: true });
      this.waiters.push(waiter);
      this.reportDepth();
    });
  }

  /** Hands `worker` to the oldest waiter; false when nobody waits. */
  serve(worker: W): boolean {
    const waiter = this.waiters.shift();
    if (!waiter) return false;
    waiter.take(worker);
    this.reportDepth();
    return true;
  }

  /** The oldest waiter learns why a start failed; the rest wait for the next attempt. */
  failOldest(error: unknown): void {
    this.waiters.shift()?.fail(error);
  }

  /** Every waiter fails with `error` (the pool is closing). */
  failAll(error: unknown): void {
    for (const waiter of this.waiters.splice(0)) waiter.fail(error);
  }

  /** Reports the depth once per tick, not once per push and pop, and only when it changed. */
  reportDepth(): void {
    this.report ??= Promise.resolve().then(() => {
      this.report = undefined;
      const queued = this.waiters.length;
      if (queued === this.lastReported) return;
      this.lastReported = queued;
      this.depthChanged(queued);
    });
  }
}
