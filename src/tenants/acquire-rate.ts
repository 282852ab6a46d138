// A tenant's acquire_rate: a token bucket of `count` tokens refilled at `count` per `perMs`
// (so the burst is the rate's own size). One token per new session the tenant asks for.
// Single-threaded; the clock is read at each take.

export class AcquireRate {
  #tokens: number;
  #at: number;

  constructor(
    readonly count: number,
    readonly perMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.#tokens = count;
    this.#at = now();
  }

  /** Takes a token: 0 when there was one, else the milliseconds until there is. */
  take(): number {
    const t = this.now();
    this.#tokens = Math.min(this.count, this.#tokens + ((t - this.#at) * this.count) / this.perMs);
    this.#at = t;
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      return 0;
    }
    return ((1 - this.#tokens) * this.perMs) / this.count;
  }

  /** New sessions per second. */
  get perSecond(): number {
    return (this.count * 1000) / this.perMs;
  }
}
