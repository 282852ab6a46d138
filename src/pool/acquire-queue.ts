// A pool's acquire queue: the acquires waiting for a worker while the pool is at max, each with
// its own way out. Waiters are served round-robin across tenants by weight, FIFO within a
// tenant (fair-share.ts says what a tenant and its weight are; the operator's acquires are one
// more tenant, of weight 1): one tenant's flood never starves another's single acquire.
//
// The round: every tenant with a waiter has a line; the lines form a ring in the order each
// tenant's line was opened (a tenant whose line empties leaves the ring, and rejoins it at the
// end). Each visit of the ring's cursor adds the tenant's weight to its line's credit, and the
// line is served, oldest first, one credit a waiter, while it has a credit of 1 or more; then the
// cursor moves on (the fraction left carries to the next visit, so a weight of 0.5 is a turn
// every other round). So a tenant of weight 2 gets two turns per round to a weight-1 tenant's
// one. Deficit round-robin with a quantum of the weight and every acquire costing 1.
//
// Invariants:
//   - a waiter leaves the queue exactly once: served, failed, or withdrawn by its signal;
//   - a waiter is served or removed synchronously: `serve` runs the next waiter's `take` (which
//     binds the worker to its session) in the same tick the waiter leaves the queue, and a
//     waiter whose signal aborts is spliced out before it can be served — so no worker is ever
//     handed to nobody;
//   - a line in the ring is never empty, and the cursor points into the ring whenever it is not;
//   - admission (`refusal`): an acquire is refused at once when `queue_limit` waiters more than
//     the workers that are idle, starting or may still start (`room`) already wait — unless its
//     tenant has fewer waiters than its share of those places (room + queue_limit, shared by
//     weight among the tenants waiting and itself), so one tenant's flood cannot fill the queue
//     against another (up to twice that many waiters in all: the queue's memory stays bounded
//     by queue_limit); and when it will not wait (waitMs 0) and `room` waiters already wait;
//   - the depth is reported at most once per tick, and only when it changed. Failures (a start
//     that failed, shutdown) report nothing themselves: the pump after a failed start reports,
//     and a closed pool reports no more.
//
// Concurrency: single-threaded; every method is synchronous, and the only deferred step is the
// depth report (a microtask). Weights are read when a line is visited, so a changed weight
// counts from the next visit on.

import type { PoolOptions } from "../core/index.ts";
import { HerdError } from "../core/index.ts";
import type { Tenant } from "./fair-share.ts";

interface Waiter<W> {
  take(worker: W): void;
  fail(error: unknown): void;
}

/** One tenant's waiters, oldest first, and the turns it has left in this round. */
interface Line<W> {
  tenant: Tenant;
  waiters: Waiter<W>[];
  credit: number;
}

export class AcquireQueue<W> {
  private readonly lines = new Map<Tenant, Line<W>>();
  /** The lines with waiters, in the order they opened. */
  private readonly ring: Line<W>[] = [];
  private cursor = 0;
  /** Whether the line at the cursor has had its weight for this visit. */
  private visited = false;
  private size = 0;
  private lastReported = 0;
  private report: Promise<void> | undefined;

  constructor(
    private readonly options: Pick<PoolOptions, "name" | "max" | "queueLimit">,
    /** Called with the new depth, once per tick at most. */
    private readonly depthChanged: (queued: number) => void,
    /** What a tenant weighs (fair-share.ts's weightOf): positive and finite. */
    private readonly weight: (tenant: Tenant) => number = () => 1,
  ) {}

  get length(): number {
    return this.size;
  }

  /** How many acquires each tenant has queued (only tenants with one or more). */
  waitingByTenant(): Map<Tenant, number> {
    return new Map(this.ring.map((line) => [line.tenant, line.waiters.length]));
  }

  /**
   * Why an acquire of `tenant` may not queue, with `room` workers idle, starting or yet to
   * start; else undefined.
   */
  refusal(room: number, waitMs: number | undefined, tenant?: Tenant): HerdError | undefined {
    const ahead = this.size;
    const places = room + this.options.queueLimit;
    if (waitMs === 0 && ahead >= room) return this.full(ahead);
    if (ahead < places) return undefined;
    if (ahead >= 2 * places) return this.full(ahead);
    const own = this.lines.get(tenant)?.waiters.length ?? 0;
    let weights = this.lines.has(tenant) ? 0 : this.weight(tenant);
    for (const line of this.ring) weights += this.weight(line.tenant);
    const share = (places * this.weight(tenant)) / weights;
    if (own < share) return undefined;
    const whose =
      own === ahead
        ? ""
        : `; ${own} of them ${tenant === undefined ? "the operator's" : `tenant ${tenant}'s`}, its share`;
    return this.full(ahead, whose);
  }

  private full(ahead: number, whose = ""): HerdError {
    return new HerdError(
      "resource_exhausted",
      `pool ${this.options.name} is at max (${this.options.max} workers) with ${ahead} acquires queued (queue_limit ${this.options.queueLimit})${whose}`,
    );
  }

  /**
   * Queues an acquire of `tenant` (undefined: the operator's). Resolves with what `take`
   * returns, run in the tick a worker is handed to it; rejects with the signal's reason once it
   * aborts while still queued, or with the error a failure hands it.
   */
  wait<T>(take: (worker: W) => T, signal: AbortSignal, tenant?: Tenant): Promise<T> {
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
        this.withdraw(tenant, waiter);
        this.reportDepth();
        reject(signal.reason);
      };
      signal.addEventListener("abort", withdraw, { once: true });
      let line = this.lines.get(tenant);
      if (!line) {
        line = { tenant, waiters: [], credit: 0 };
        this.lines.set(tenant, line);
        this.ring.push(line);
      }
      line.waiters.push(waiter);
      this.size++;
      this.reportDepth();
    });
  }

  /** Hands `worker` to the next waiter in the round; false when nobody waits. */
  serve(worker: W): boolean {
    const waiter = this.next();
    if (!waiter) return false;
    waiter.take(worker);
    this.reportDepth();
    return true;
  }

  /** The next waiter in the round learns why a start failed; the rest wait for the next attempt. */
  failNext(error: unknown): void {
    this.next()?.fail(error);
  }

  /** Every waiter fails with `error` (the pool is closing). */
  failAll(error: unknown): void {
    const all = this.ring.flatMap((line) => line.waiters);
    this.lines.clear();
    this.ring.length = 0;
    this.cursor = 0;
    this.visited = false;
    this.size = 0;
    for (const waiter of all) waiter.fail(error);
  }

  /** Reports the depth once per tick, not once per push and pop, and only when it changed. */
  reportDepth(): void {
    this.report ??= Promise.resolve().then(() => {
      this.report = undefined;
      const queued = this.size;
      if (queued === this.lastReported) return;
      this.lastReported = queued;
      this.depthChanged(queued);
    });
  }

  /** Takes the next waiter of the round out of the queue (see the header). */
  private next(): Waiter<W> | undefined {
    if (this.size === 0) return undefined;
    let line = this.ring[this.cursor]!;
    for (;;) {
      if (!this.visited) {
        line.credit += this.weight(line.tenant);
        this.visited = true;
      }
      if (line.credit >= 1) break;
      this.advance();
      line = this.ring[this.cursor]!;
    }
    const waiter = line.waiters.shift()!;
    this.size--;
    line.credit -= 1;
    if (line.waiters.length === 0) this.close(line);
    else if (line.credit < 1) this.advance();
    return waiter;
  }

  private advance(): void {
    this.cursor = (this.cursor + 1) % this.ring.length;
    this.visited = false;
  }

  private withdraw(tenant: Tenant, waiter: Waiter<W>): void {
    const line = this.lines.get(tenant);
    const index = line ? line.waiters.indexOf(waiter) : -1;
    if (!line || index < 0) return;
    line.waiters.splice(index, 1);
    this.size--;
    if (line.waiters.length === 0) this.close(line);
  }

  /** An emptied line leaves the ring, its credit with it; the cursor keeps its place. */
  private close(line: Line<W>): void {
    const index = this.ring.indexOf(line);
    this.lines.delete(line.tenant);
    this.ring.splice(index, 1);
    if (index < this.cursor) this.cursor--;
    else if (index === this.cursor) this.visited = false;
    if (this.cursor >= this.ring.length) this.cursor = 0;
  }
}
