// A pool's demand: the arrivals of new sessions and its measured boot time, turned into the
// warm plan (warm-target.ts) the pool grows to and trims to. The Pool reports arrivals and
// boots; this re-plans on each and on a tick (so the target falls when arrivals stop), emits
// a `warm_target_changed` event when the target moves, and asks the pool to grow at once or to
// let idle workers go, no lower than the highest plan of the last scale-down delay.
//
// Invariants: `arrivals` is in time order, at most MAX_ARRIVALS long, and at least half of it
// within the stable window once anything in it is older (pruned on each arrival); the tick timer runs only under `warm: auto` and
// never holds the process open; after close() nothing is planned or asked for again.
// Single-threaded: every method runs synchronously on the event loop.

import type { PoolOptions } from "../core/index.ts";
import { firstAfter, type WarmPlan, type WarmPolicy, warmPlan } from "./warm-target.ts";

/** The boot time assumed until a worker of the pool has booted. */
export const PRIOR_BOOT_MS = 1_000;
/** The weight of the newest boot in the boot-time estimate (moving average). */
const BOOT_WEIGHT = 0.3;
/** The share of the stable window a raised plan holds before the pool trims below it. */
const SCALE_DOWN_DELAY = 0.2;
/** Arrivals remembered at most (a memory bound: 100 k new sessions a minute). */
const MAX_ARRIVALS = 100_000;

export interface ShaperDeps {
  /** Workers serving a session now. */
  busy(): number;
  /** Workers in all (starting, idle, busy). */
  total(): number;
  /** Start workers until the pool has `plan.workers` (the pool's own bounds apply). */
  grow(): void;
  /** Let `count` idle workers go, the longest idle first. */
  trim(count: number): void;
  /** The target moved: the pool's `warm_target_changed` event. */
  changed(plan: WarmPlan, bootMs: number): void;
}

export function policyOf(options: PoolOptions): WarmPolicy {
  return options.warm === "auto"
    ? {
        kind: "auto",
        windowMs: options.warmWindowMs,
        panicWindowMs: Math.max(1, Math.round(options.warmWindowMs / 10)),
        maxIdle: options.maxIdle,
      }
    : { kind: "fixed" };
}

export class DemandShaper {
  private readonly policy: WarmPolicy;
  private readonly arrivals: number[] = [];
  private bootMs = 0;
  /** The last re-plan's target and rate: what the events said, and GetStats says. */
  private last = { target: 0, rate: 0 };
  /** The highest plan of the last scale-down delay: the pool trims to it, not below. */
  private hold = { workers: 0, at: 0 };
  private tick: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly options: PoolOptions,
    private readonly deps: ShaperDeps,
  ) {
    this.policy = policyOf(options);
    if (this.policy.kind === "auto") {
      // Half a panic window: a surge is seen within it, a stopped demand within its window.
      const every = Math.min(5_000, Math.max(100, this.policy.panicWindowMs / 2));
      this.tick = setInterval(() => this.replan(), every);
      this.tick.unref();
    }
  }

  get auto(): boolean {
    return this.policy.kind === "auto";
  }

  /** A new session was asked for. */
  arrived(now = performance.now()): void {
    if (this.policy.kind !== "auto") return;
    this.arrivals.push(now);
    // Drop what left the window once it is half the list (amortised O(1) per arrival).
    const stale = firstAfter(this.arrivals, now - this.policy.windowMs);
    if (stale * 2 >= this.arrivals.length && stale > 0) this.arrivals.splice(0, stale);
    if (this.arrivals.length > MAX_ARRIVALS) this.arrivals.splice(0, MAX_ARRIVALS / 2);
    this.replan(now);
  }

  /** A worker booted in `ms` (spawn to ready). */
  booted(ms: number): void {
    this.bootMs = this.bootMs === 0 ? ms : this.bootMs + BOOT_WEIGHT * (ms - this.bootMs);
  }

  plan(now = performance.now()): WarmPlan {
    return warmPlan({
      policy: this.policy,
      arrivals: this.arrivals,
      now,
      bootMs: this.bootMs || PRIOR_BOOT_MS,
      min: this.options.min,
      max: this.options.max,
      busy: this.deps.busy(),
    });
  }

  /** What GetStats shows: the target, the rate it is sized for, the measured boot time. */
  stats(): { warmTarget: number; arrivalRate: number; bootMs: number } {
    const { target, rate } = this.last;
    return { warmTarget: target, arrivalRate: rate, bootMs: Math.round(this.bootMs) };
  }

  /** Re-plans: reports a moved target, grows to the plan or lets the surplus idle go. */
  replan(now = performance.now()): void {
    if (this.closed || this.policy.kind !== "auto") return;
    const plan = this.plan(now);
    const moved = plan.target !== this.last.target;
    this.last = { target: plan.target, rate: plan.rate };
    if (moved) this.deps.changed(plan, Math.round(this.bootMs || PRIOR_BOOT_MS));
    // Down no faster than SCALE_DOWN_DELAY of the window: a target that dips between two clumps
    // of arrivals would otherwise let workers go just before they are needed again.
    const delayMs = this.policy.windowMs * SCALE_DOWN_DELAY;
    if (plan.workers >= this.hold.workers || now - this.hold.at >= delayMs) {
      this.hold = { workers: plan.workers, at: now };
    }
    const total = this.deps.total();
    if (total < plan.workers) this.deps.grow();
    else if (total > this.hold.workers) this.deps.trim(total - this.hold.workers);
  }

  close(): void {
    this.closed = true;
    clearInterval(this.tick);
  }
}
