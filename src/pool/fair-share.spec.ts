// Weights, fair shares and which idle sessions preempt_idle may take (preemption.ts's victims),
// as pure functions: no pool, no clock.
import { describe, expect, it } from "vitest";
import { fairShares, type Tenant, weightOf } from "./fair-share.ts";
import { victims } from "./preemption.ts";

describe("weightOf", () => {
  it("weighs the operator 1, and any weight that is not a positive finite number 1", () => {
    const weights = (t: string) => ({ a: 3, zero: 0, neg: -2, nan: Number.NaN })[t] ?? 1;
    expect(weightOf(weights, undefined)).toBe(1);
    expect(weightOf(weights, "a")).toBe(3);
    for (const t of ["zero", "neg", "nan", "unknown"]) expect(weightOf(weights, t)).toBe(1);
    expect(weightOf(undefined, "a")).toBe(1);
  });
});

describe("fairShares", () => {
  it("gives each contender max × weight ÷ the contenders' summed weights, unrounded", () => {
    const w = (t: Tenant) => (t === "a" ? 2 : 1);
    expect(fairShares(3, ["a", "b", undefined], w)).toEqual(
      new Map<Tenant, number>([
        ["a", 1.5],
        ["b", 0.75],
        [undefined, 0.75],
      ]),
    );
  });
});

describe("preemption's victims", () => {
  interface S {
    id: string;
    tenant: Tenant;
    leases: number;
    lastActiveAt: number;
  }
  const s = (id: string, tenant: Tenant, lastActiveAt: number, leases = 0): S => ({
    id,
    tenant,
    leases,
    lastActiveAt,
  });
  const idle = (x: S) => x.leases === 0;
  const ids = (list: S[]) => list.map((x) => x.id);
  const even = { max: 2, weight: () => 1 };

  it("never takes from a tenant at its share for another tenant's acquire", () => {
    // a and b hold one each of max 2: both at their share of 1; c waits.
    const sessions = [s("a1", "a", 1), s("b1", "b", 2)];
    const waiting = new Map<Tenant, number>([["c", 1]]);
    // c counts as a contender: shares are 2/3 each, so a and b are both above theirs.
    expect(ids(victims(sessions, waiting, 1, idle, even))).toEqual(["a1"]);
    // b waits instead of c: a (1 held, share 1) is at its share and never yields to b; b, every
    // waiter's tenant, may make room for itself.
    expect(ids(victims(sessions, new Map([["b", 1]]), 2, idle, even))).toEqual(["b1"]);
  });

  it("takes from a tenant above its share, idlest first, and counts each pick", () => {
    const sessions = [s("a1", "a", 3), s("a2", "a", 1), s("a3", "a", 2), s("b1", "b", 0, 1)];
    const four = { max: 4, weight: () => 1 };
    // a holds 3 > its share of 2; b (1 held, 1 waiting) is below its own.
    const picked = victims(sessions, new Map([["b", 2]]), 2, idle, four);
    expect(ids(picked)).toEqual(["a2"]); // after it a holds 2 = its share: no second pick
  });

  it("lets a tenant make room for itself when every waiter is its own (a single-tenant herd)", () => {
    const sessions = [s("op1", undefined, 1), s("op2", undefined, 2, 1)];
    expect(ids(victims(sessions, new Map([[undefined, 3]]), 3, idle, even))).toEqual(["op1"]);
  });

  it("weighs shares: weight 3 to 1 in a pool of 4 is 3 and 1", () => {
    const sessions = [s("a1", "a", 1), s("a2", "a", 2), s("a3", "a", 3), s("b1", "b", 0, 1)];
    const weighted = { max: 4, weight: (t: Tenant) => (t === "a" ? 3 : 1) };
    expect(victims(sessions, new Map([["b", 1]]), 1, idle, weighted)).toEqual([]);
    const even4 = { max: 4, weight: () => 1 };
    expect(ids(victims(sessions, new Map([["b", 1]]), 1, idle, even4))).toEqual(["a1"]);
  });
});
