// How many workers a pool keeps ahead of demand: its warm plan. Pure: arrivals, boot time and
// the clock come in, the plan goes out; demand-shaper.ts feeds it and acts on it.
//
// The policy is one formula for both modes. `fixed` (no `warm: auto`, today's default) wants
// no idle workers beyond the floor `min`; `auto` wants as many idle workers as the new sessions
// expected while one worker boots, plus a burst allowance:
//
//   rate   = arrivals in the stable window ÷ the window; when the arrivals of the short panic
//            window alone come in at ≥ 2× that rate, their rate (as Knative's panic mode);
//   m      = rate × measured boot time        (the sessions that arrive while one worker boots)
//   idle   = ceil(m + 2·√m)                   (2·√m: two standard deviations of a Poisson count:
//                                              a boot's worth of arrivals exceeds it rarely)
//   idle   = 0 when no session arrived within the stable window (demand stopped);
//   idle   ≤ max_idle; workers = busy + idle, within min and max.
//
// Both modes keep one prepared spare where a start has a slow set-up (worker-supply.ts): the
// stage before ready, the same plan's second number.

export type WarmPolicy =
  | { kind: "fixed" }
  | {
      kind: "auto";
      /** The stable window: arrivals over this long set the rate. */
      windowMs: number;
      /** The panic window: a surge within this long raises the rate at once. */
      panicWindowMs: number;
      /** At most this many idle workers. */
      maxIdle: number;
    };

export interface WarmInputs {
  policy: WarmPolicy;
  /** When new sessions arrived (epoch ms), oldest first; older than the window is ignored. */
  arrivals: readonly number[];
  now: number;
  /** The pool's boot time estimate (ms). */
  bootMs: number;
  min: number;
  max: number;
  /** Workers serving a session now (they are not idle, whatever the target). */
  busy: number;
}

export interface WarmPlan {
  /** Idle workers wanted beyond the busy ones (before the min/max bounds). */
  target: number;
  /** Workers to keep in all (busy + target, within min and max): the pool grows to this and
   * lets idle workers go above it. */
  workers: number;
  /** Prepared spares to keep (worker-supply.ts), where a start has a slow set-up. */
  prepared: number;
  /** New sessions per second the target is sized for. */
  rate: number;
  /** The panic window's rate is in charge. */
  panic: boolean;
}

/** A surge: the panic window's rate at least this many times the stable window's. */
export const PANIC_FACTOR = 2;

/** The index of the first arrival after `cut` (binary search: arrivals are in order). */
export function firstAfter(arrivals: readonly number[], cut: number): number {
  let lo = 0;
  let hi = arrivals.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (arrivals[mid]! <= cut) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Arrivals in (now - windowMs, now]; none later than now are recorded. */
function countSince(arrivals: readonly number[], now: number, windowMs: number): number {
  return arrivals.length - firstAfter(arrivals, now - windowMs);
}

/** The idle workers that cover `m` expected arrivals during one boot. */
export function idleFor(m: number): number {
  return m <= 0 ? 0 : Math.ceil(m + 2 * Math.sqrt(m));
}

export function warmPlan(input: WarmInputs): WarmPlan {
  const { policy, min, max, busy } = input;
  let target = 0;
  let rate = 0;
  let panic = false;
  if (policy.kind === "auto") {
    const stable =
      countSince(input.arrivals, input.now, policy.windowMs) / (policy.windowMs / 1000);
    const surge =
      countSince(input.arrivals, input.now, policy.panicWindowMs) / (policy.panicWindowMs / 1000);
    panic = surge > 0 && surge >= PANIC_FACTOR * stable;
    rate = panic ? surge : stable;
    target = Math.min(idleFor((rate * input.bootMs) / 1000), policy.maxIdle);
  }
  const workers = Math.min(max, Math.max(min, busy + target));
  return { target, workers, prepared: 1, rate, panic };
}
