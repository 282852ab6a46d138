// The warm plan from arrival times and boot times alone: no pool, no clock.
import { describe, expect, it } from "vitest";
import { firstAfter, idleFor, type WarmInputs, type WarmPolicy, warmPlan } from "./warm-target.ts";

const auto: WarmPolicy = { kind: "auto", windowMs: 60_000, panicWindowMs: 6_000, maxIdle: 100 };

/** `n` arrivals evenly spread over the `spanMs` before `now`. */
function even(n: number, spanMs: number, now: number): number[] {
  return Array.from({ length: n }, (_, i) => now - spanMs + ((i + 1) * spanMs) / n);
}

function plan(over: Partial<WarmInputs>) {
  return warmPlan({
    policy: auto,
    arrivals: [],
    now: 1_000_000,
    bootMs: 300,
    min: 0,
    max: 50,
    busy: 0,
    ...over,
  });
}

describe("warm plan", () => {
  it("fixed: nothing idle beyond min, and one prepared spare (today's pool)", () => {
    const now = 1_000_000;
    const p = plan({ policy: { kind: "fixed" }, arrivals: even(600, 60_000, now), min: 2 });
    expect(p).toMatchObject({ target: 0, workers: 2, prepared: 1, rate: 0 });
    expect(plan({ policy: { kind: "fixed" }, min: 2, busy: 5 }).workers).toBe(5);
  });

  it("auto: sized for the arrivals during one boot, plus two standard deviations", () => {
    const now = 1_000_000;
    // 10 new sessions/s × 0.3 s = 3 expected during a boot; 3 + 2·√3 = 6.46 → 7.
    const p = plan({ arrivals: even(600, 60_000, now), now, bootMs: 300 });
    expect(p.rate).toBeCloseTo(10, 5);
    expect(p.panic).toBe(false);
    expect(p.target).toBe(7);
    expect(p.workers).toBe(7);
    // The same rate with a 3 s boot: 30 + 2·√30 = 40.95 → 41.
    expect(plan({ arrivals: even(600, 60_000, now), now, bootMs: 3_000 }).target).toBe(41);
  });

  it("the target rises with the arrival rate and the boot time", () => {
    const now = 1_000_000;
    let last = 0;
    for (const n of [6, 60, 300, 1200]) {
      const t = plan({ arrivals: even(n, 60_000, now), now }).target;
      expect(t).toBeGreaterThan(last);
      last = t;
    }
    expect(plan({ arrivals: even(60, 60_000, now), now, bootMs: 2_000 }).target).toBeGreaterThan(
      plan({ arrivals: even(60, 60_000, now), now, bootMs: 200 }).target,
    );
  });

  it("busy workers come on top of the target; min and max bound the total", () => {
    const now = 1_000_000;
    const arrivals = even(600, 60_000, now);
    expect(plan({ arrivals, now, busy: 4 }).workers).toBe(11);
    expect(plan({ arrivals, now, busy: 4, max: 8 }).workers).toBe(8);
    expect(plan({ arrivals: [], now, busy: 1, min: 3 }).workers).toBe(3);
  });

  it("max_idle caps the target", () => {
    const now = 1_000_000;
    const capped = { ...auto, maxIdle: 2 };
    expect(plan({ policy: capped, arrivals: even(600, 60_000, now), now }).target).toBe(2);
  });

  it("a surge in the panic window raises the target at once", () => {
    const now = 1_000_000;
    // A quiet minute at 1/s, then 30 arrivals in the last 3 s.
    const quiet = even(54, 54_000, now - 6_000);
    const burst = even(30, 3_000, now);
    const calm = plan({ arrivals: quiet, now: now - 6_000 });
    const surged = plan({ arrivals: [...quiet, ...burst], now });
    expect(surged.panic).toBe(true);
    // The panic window's 30 in 6 s = 5/s, not the stable window's 84 in 60 s = 1.4/s.
    expect(surged.rate).toBeCloseTo(5, 5);
    expect(surged.target).toBeGreaterThan(calm.target);
    expect(surged.target).toBe(idleFor(5 * 0.3));
    // Steady arrivals do not panic.
    expect(plan({ arrivals: even(600, 60_000, now), now }).panic).toBe(false);
  });

  it("falls to min once no session arrived within the stable window", () => {
    const now = 1_000_000;
    const arrivals = even(600, 60_000, now);
    expect(plan({ arrivals, now, min: 1 }).target).toBeGreaterThan(0);
    // Half a window later: half the arrivals remain, the target is lower.
    const later = plan({ arrivals, now: now + 30_000, min: 1 });
    expect(later.target).toBeLessThan(plan({ arrivals, now, min: 1 }).target);
    expect(later.target).toBeGreaterThan(0);
    // A whole window after the last one: nothing idle, the pool back at min.
    expect(plan({ arrivals, now: now + 60_000, min: 1 })).toMatchObject({
      target: 0,
      workers: 1,
      rate: 0,
    });
  });

  it("idleFor covers a Poisson count of m arrivals ≥ 97 % of the time", () => {
    // P(Poisson(m) ≤ idleFor(m)), summed exactly.
    for (const m of [0.05, 0.3, 1, 3, 10, 30]) {
      const k = idleFor(m);
      let term = Math.exp(-m);
      let cdf = term;
      for (let i = 1; i <= k; i++) {
        term *= m / i;
        cdf += term;
      }
      expect(cdf, `m=${m} k=${k}`).toBeGreaterThanOrEqual(0.97);
    }
    expect(idleFor(0)).toBe(0);
  });

  it("firstAfter finds the window's edge in sorted arrivals", () => {
    const a = [1, 2, 2, 5, 9];
    expect(firstAfter(a, 0)).toBe(0);
    expect(firstAfter(a, 2)).toBe(3);
    expect(firstAfter(a, 9)).toBe(5);
    expect(firstAfter([], 3)).toBe(0);
  });
});
