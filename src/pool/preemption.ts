// Idle sessions yield to waiting ones (preempt_idle, opt-in).
//
// Invariant: a session is preempted only while its pool is at `max` with more acquires queued
// than workers already on their way to them (starting, or being freed by a preemption in
// progress), only if it has no open lease (no connection, no hold), and only once it has been
// idle at least `preempt_idle`; the idlest goes first. So a preemption never ends a session
// nobody waits for, nor one in use. Under-counting is safe (the next check catches up);
// over-counting would end sessions for nothing, hence the in-progress count.
//
// Concurrency: single-threaded. The pool calls check() whenever its queue is pumped; sessions
// also become eligible by the clock alone, so a timer re-checks while acquires wait.

export interface Preemptible {
  readonly leases: number;
  readonly lastActiveAt: number;
}

export interface PreemptionHost<S extends Preemptible> {
  /** No idle worker and no room to start one. */
  atMax(): boolean;
  /** Acquires queued. */
  waiting(): number;
  /** Workers starting (each will serve a waiter). */
  starting(): number;
  sessions(): Iterable<S>;
  /** Ends the session (reason `preempted`); resolves when its worker is free or gone. */
  preempt(session: S): Promise<unknown>;
}

/** Longest pause between checks while acquires wait. */
const RECHECK_MAX_MS = 1_000;

export class Preemption<S extends Preemptible> {
  #timer: NodeJS.Timeout | undefined;
  #inProgress = 0;
  #closed = false;

  constructor(
    private readonly idleMs: number,
    private readonly host: PreemptionHost<S>,
  ) {}

  check(): void {
    if (this.idleMs <= 0 || this.#closed) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const { host } = this;
    if (host.waiting() === 0) return;
    const now = Date.now();
    const free = [...host.sessions()].filter((s) => s.leases === 0);
    const need = host.waiting() - host.starting() - this.#inProgress;
    if (need > 0 && host.atMax()) {
      const idlest = free
        .filter((s) => now - s.lastActiveAt >= this.idleMs)
        .sort((a, b) => a.lastActiveAt - b.lastActiveAt)
        .slice(0, need);
      for (const session of idlest) {
        this.#inProgress++;
        host
          .preempt(session)
          .catch(() => {})
          .finally(() => {
            this.#inProgress--;
            this.check();
          });
      }
    }
    const next = Math.min(...free.map((s) => s.lastActiveAt + this.idleMs - now));
    const delay = Math.max(10, Math.min(RECHECK_MAX_MS, Number.isFinite(next) ? next : Infinity));
    this.#timer = setTimeout(() => this.check(), delay);
    this.#timer.unref();
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
  }
}
