// acquire_rate's bucket on a clock the spec moves: a burst of the rate's size, then one token
// per period ÷ count, and the wait it names is the wait there is.
import { describe, expect, it } from "vitest";
import { AcquireRate } from "./acquire-rate.ts";

describe("AcquireRate", () => {
  it("allows a burst of its size, then refills at its rate, naming the wait", () => {
    let now = 0;
    const rate = new AcquireRate(5, 1000, () => now);
    for (let k = 0; k < 5; k++) expect(rate.take()).toBe(0);
    expect(rate.take()).toBeCloseTo(200);
    now = 100;
    expect(rate.take()).toBeCloseTo(100);
    now = 200;
    expect(rate.take()).toBe(0);
    expect(rate.take()).toBeCloseTo(200);
    now = 10_000; // a long pause refills to the burst, not beyond
    for (let k = 0; k < 5; k++) expect(rate.take()).toBe(0);
    expect(rate.take()).toBeGreaterThan(0);
    expect(new AcquireRate(90, 60_000).perSecond).toBe(1.5);
  });
});
