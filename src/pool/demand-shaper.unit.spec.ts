// DemandShaper on fakes: what it asks of the pool, in milliseconds (demand-shaper.spec.ts:
// the same with real workers).
import { afterEach, describe, expect, it } from "vitest";
import { DemandShaper } from "./demand-shaper.ts";
import { resolvePoolOptions } from "./options.ts";

const closers: { close(): void }[] = [];
afterEach(() => {
  for (const c of closers.splice(0)) c.close();
});

function shaper(
  over: Parameters<typeof resolvePoolOptions>[0] extends infer T ? Partial<T> : never,
) {
  const calls: string[] = [];
  const pool = { busy: 0, total: 0 };
  const s = new DemandShaper(resolvePoolOptions({ name: "p", command: ["x"], max: 20, ...over }), {
    busy: () => pool.busy,
    total: () => pool.total,
    grow: () => calls.push("grow"),
    trim: (n) => calls.push(`trim ${n}`),
    changed: (plan, bootMs) => calls.push(`target ${plan.target} (boot ${bootMs})`),
  });
  closers.push(s);
  return { s, calls, pool };
}

describe("DemandShaper", () => {
  it("warm: auto grows on arrivals, reports the move, and trims once they stop", () => {
    const { s, calls, pool } = shaper({ warm: "auto", warmWindowMs: 10_000 });
    s.booted(400);
    s.booted(200); // a moving average: 400 + 0.3 × (200 − 400)
    expect(s.stats().bootMs).toBe(340);
    for (let t = 0; t < 10_000; t += 250) s.arrived(t); // 4/s
    // 4/s × 0.34 s = 1.36 → ⌈1.36 + 2·√1.36⌉ = 4.
    expect(s.stats()).toMatchObject({ warmTarget: 4, arrivalRate: 4 });
    expect(calls).toContain("target 4 (boot 340)");
    expect(calls.at(-1)).toBe("grow");
    pool.total = 4;
    s.replan(9_900 + 10_000); // a window after the last arrival
    expect(s.stats()).toMatchObject({ warmTarget: 0, arrivalRate: 0 });
    expect(calls.slice(-2)).toEqual(["target 0 (boot 340)", "trim 4"]);
  });

  it("without warm: auto it plans min and one spare, and never calls the pool", () => {
    const { s, calls } = shaper({ min: 2 });
    for (let t = 0; t < 1_000; t += 10) s.arrived(t);
    s.replan();
    expect(s.plan()).toMatchObject({ workers: 2, prepared: 1, target: 0 });
    expect(calls).toEqual([]);
  });
});
