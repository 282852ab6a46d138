// Crash-loop backoff for a pool's automatic starts. A worker that dies soon after it became
// ready (or fails to start at all) counts as a crash; consecutive crashes delay the next
// automatic start exponentially, up to a cap, so a broken worker cannot make the daemon spawn
// in a tight loop (issue 10, item 6: 39 restarts in 10 s). The first crash restarts at once:
// one crash is no loop.
//
// Invariants: `streak` counts crashes since the last worker that stayed up `resetAfterMs`
// (or since a quiet spell that long after the last delay ran out); `until` is the earliest time
// the pool may start a worker on its own. Acquires are never refused here: the pool queues
// them and tells the waiter why when its wait runs out. Single-threaded; at most one resume
// timer is pending, and stability timers only ever reset the streak.

import { HerdError } from "../core/index.ts";

export interface BackoffOptions {
  /** Delay after the second consecutive crash; it doubles per further crash. */
  initialMs: number;
  maxMs: number;
  /** A worker up this long ends the streak. */
  resetAfterMs: number;
  /** Called when a backoff that held a start back has run out. */
  resume: () => void;
}

export interface BackoffState {
  /** Consecutive crashes (0: not crash-looping). */
  streak: number;
  /** How long until the pool starts a worker again on its own (0: now). */
  remainingMs: number;
  /** Why the last crash happened, while in a streak. */
  reason?: string;
}

export class RestartBackoff {
  private streak = 0;
  private until = 0;
  private lastDelay = 0;
  private lastCrashAt = 0;
  private reason: string | undefined;
  private resumeTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly options: BackoffOptions) {}

  /**
   * A worker died having been ready for `upMs` (0: it never became ready). Returns the delay
   * now in force before the next automatic start.
   */
  crashed(upMs: number, reason: string, now = Date.now()): number {
    if (upMs >= this.options.resetAfterMs) this.reset();
    if (this.streak > 0 && now - this.lastCrashAt >= this.lastDelay + this.options.resetAfterMs) {
      this.reset();
    }
    this.streak++;
    this.reason = reason;
    this.lastCrashAt = now;
    const { initialMs, maxMs } = this.options;
    this.lastDelay = this.streak < 2 ? 0 : Math.min(initialMs * 2 ** (this.streak - 2), maxMs);
    this.until = now + this.lastDelay;
    return this.lastDelay;
  }

  /** A worker ready since `since` stayed up `resetAfterMs`; unless one crashed meanwhile. */
  resetIfQuietSince(since: number): void {
    if (this.lastCrashAt <= since) this.reset();
  }

  /** The pool is healthy again. */
  reset(): void {
    this.streak = 0;
    this.until = 0;
    this.lastDelay = 0;
    this.reason = undefined;
  }

  /** False while backing off; then one timer calls `resume` when the backoff ends. */
  mayStart(): boolean {
    const wait = this.remainingMs();
    if (wait === 0) return true;
    if (!this.resumeTimer && !this.closed) {
      this.resumeTimer = setTimeout(() => {
        this.resumeTimer = undefined;
        this.options.resume();
      }, wait);
      this.resumeTimer.unref();
    }
    return false;
  }

  /** A worker became ready at `readyAt`; if `stillUp()` after resetAfterMs, the streak ends. */
  watch(readyAt: number, stillUp: () => boolean): void {
    setTimeout(() => {
      if (stillUp()) this.resetIfQuietSince(readyAt);
    }, this.options.resetAfterMs).unref();
  }

  /** The error for an acquire whose wait ran out during a crash loop; undefined if none. */
  explain(pool: string): HerdError | undefined {
    if (this.streak < 2) return undefined;
    return new HerdError(
      "unavailable",
      `pool ${pool} is crash-looping: ${this.streak} workers in a row died soon after starting (last: ${this.reason}); next start in ${this.remainingMs()} ms`,
    );
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.resumeTimer);
  }

  remainingMs(now = Date.now()): number {
    return Math.max(0, this.until - now);
  }

  state(now = Date.now()): BackoffState {
    return {
      streak: this.streak,
      remainingMs: this.remainingMs(now),
      ...(this.reason !== undefined ? { reason: this.reason } : {}),
    };
  }
}
