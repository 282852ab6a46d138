// The request-body deadline with a minimum data rate (Apache mod_reqtimeout's
// `body=20,MinRate=500`): a body gets `timeoutMs` to start, and every `minRate` bytes received
// push the deadline one second further. A trickling client is cut; a long upload at a decent
// rate is not. Time the body spends blocked behind a worker that reads slowly (backpressure)
// is not the client's fault: at expiry a blocked body gets a fresh `timeoutMs`.
//
// Invariant: at most one timer is armed; after stop() (or expiry) none is and onExpire is
// never called again. Single-threaded (event loop).

export interface BodyRate {
  /** Time for the body to start, and the least time it is ever given; 0: no deadline. */
  timeoutMs: number;
  /** Bytes per second that extend the deadline by one second each; 0: no extension. */
  minRate: number;
}

export class BodyDeadline {
  #deadline = 0;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(
    readonly rate: BodyRate,
    readonly isBlocked: () => boolean,
    readonly onExpire: () => void,
  ) {}

  start(): void {
    if (this.rate.timeoutMs <= 0) return;
    this.#deadline = Date.now() + this.rate.timeoutMs;
    this.#arm();
  }

  received(bytes: number): void {
    if (this.rate.minRate > 0) this.#deadline += (bytes * 1000) / this.rate.minRate;
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(): void {
    if (this.#stopped) return;
    // Timers are not re-armed per chunk (that would be one timer per TCP segment): the one
    // timer wakes at the deadline known when it was armed and looks again.
    this.#timer = setTimeout(() => this.#check(), Math.max(1, this.#deadline - Date.now()));
  }

  #check(): void {
    this.#timer = undefined;
    if (this.#stopped) return;
    const now = Date.now();
    if (now < this.#deadline) this.#arm();
    else if (this.isBlocked()) {
      this.#deadline = now + this.rate.timeoutMs;
      this.#arm();
    } else {
      this.#stopped = true;
      this.onExpire();
    }
  }
}
