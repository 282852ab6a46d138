// Idle sessions yield to waiting ones (preempt_idle, opt-in), within tenants' fair shares.
//
// Invariant: a session is preempted only while its pool is at `max` with more acquires queued
// than workers already on their way to them (starting, or being freed by a preemption in
// progress), only if it has no open lease (no connection, no hold), and only once it has been
// idle at least `preempt_idle`; the idlest eligible goes first. So a preemption never ends a
// session nobody waits for, nor one in use. Under-counting is safe (the next check catches up);
// over-counting would end sessions for nothing, hence the in-progress count.
//
// Fair share (fair-share.ts defines it: max × weight ÷ the sum of the weights of the tenants
// that hold or want sessions in the pool, the operator a tenant of weight 1): a session is
// eligible only when its tenant holds more live sessions in the pool than its fair share, or
// when every queued acquire is its own tenant's (a tenant may make room for itself, as a
// single-tenant herd always did). So a tenant at or below its share is never preempted for
// another tenant's acquire. Shares are taken at the check; each preemption it picks counts
// its tenant one session less for the next pick.
//
// Concurrency: single-threaded. The pool calls check() whenever its queue is pumped; sessions
// also become eligible by the clock alone, so a timer re-checks while acquires wait.

import { fairShares, type Tenant } from "./fair-share.ts";

export interface Preemptible {
  readonly leases: number;
  readonly lastActiveAt: number;
  readonly tenant: Tenant;
}

export interface PreemptionHost<S extends Preemptible> {
  /** The pool's max workers. */
  readonly max: number;
  /** What a tenant weighs (fair-share.ts's weightOf). */
  weight(tenant: Tenant): number;
  /** No idle worker and no room to start one. */
  atMax(): boolean;
  /** Acquires queued, per tenant (tenants with none absent). */
  waiting(): ReadonlyMap<Tenant, number>;
  /** Workers starting (each will serve a waiter). */
  starting(): number;
  sessions(): Iterable<S>;
  /** Ends the session (reason `preempted`); resolves when its worker is free or gone. */
  preempt(session: S): Promise<unknown>;
}

/** Up to `need` idle sessions, idlest first, whose tenants may yield them (see the header). */
export function victims<S extends Preemptible>(
  sessions: readonly S[],
  waiting: ReadonlyMap<Tenant, number>,
  need: number,
  eligible: (s: S) => boolean,
  share: { max: number; weight(tenant: Tenant): number },
): S[] {
  const held = new Map<Tenant, number>();
  for (const s of sessions) held.set(s.tenant, (held.get(s.tenant) ?? 0) + 1);
  const shares = fairShares(share.max, new Set([...held.keys(), ...waiting.keys()]), share.weight);
  const picked: S[] = [];
  for (const s of sessions.filter(eligible).sort((a, b) => a.lastActiveAt - b.lastActiveAt)) {
    if (picked.length >= need) break;
    const holds = held.get(s.tenant) ?? 0;
    const onlyOwnWait = waiting.size === 1 && waiting.has(s.tenant);
    if (holds > (shares.get(s.tenant) ?? 0) || onlyOwnWait) {
      picked.push(s);
      held.set(s.tenant, holds - 1);
    }
  }
  return picked;
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
    const waiting = host.waiting();
    let queued = 0;
    for (const n of waiting.values()) queued += n;
    if (queued === 0) return;
    const now = Date.now();
    const sessions = [...host.sessions()];
    const free = sessions.filter((s) => s.leases === 0);
    const need = queued - host.starting() - this.#inProgress;
    if (need > 0 && host.atMax()) {
      const idle = (s: S) => s.leases === 0 && now - s.lastActiveAt >= this.idleMs;
      for (const session of victims(sessions, waiting, need, idle, host)) {
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
