// A deadline moved far more often than it fires: the fast path's data_timeout, set for every
// request on a keep-alive connection and cleared by nearly every response. Setting or clearing
// it costs a clock read and a store; the one timer behind it is armed only when none is
// pending or the new deadline comes first, and a timer that fires early is re-armed for what
// is left. So a busy connection costs about one timer per timeout period, not one per request.
//
// Invariants: `fire` runs at most once per set(), never after clear() or stop(), and never
// before the deadline (late by at most the timer's granularity). After stop() no timer is
// pending. Single-threaded.

export class LazyDeadline {
  /** When the deadline passes (performance.now()), or 0: none. */
  #at = 0;
  #timer: NodeJS.Timeout | undefined;
  /** When the pending timer fires. */
  #timerAt = 0;

  constructor(private readonly fire: () => void) {}

  /** The deadline is `ms` from now (replacing any earlier one). */
  set(ms: number): void {
    const at = performance.now() + ms;
    this.#at = at;
    if (this.#timer !== undefined && this.#timerAt <= at) return;
    clearTimeout(this.#timer);
    this.#arm(ms);
  }

  clear(): void {
    this.#at = 0;
  }

  stop(): void {
    this.#at = 0;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(ms: number): void {
    this.#timerAt = performance.now() + ms;
    this.#timer = setTimeout(() => this.#check(), ms);
  }

  #check(): void {
    this.#timer = undefined;
    if (this.#at === 0) return;
    const left = this.#at - performance.now();
    if (left > 0) {
      this.#arm(Math.ceil(left));
      return;
    }
    this.#at = 0;
    this.fire();
  }
}
