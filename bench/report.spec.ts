import { describe, expect, it } from "vitest";
import { compared, withVerdict } from "./report.ts";

describe("withVerdict", () => {
  it("checks the figure its goal's words name: the value, the ratio, or what was added", () => {
    const row = (goal: string) => withVerdict(compared("x", 0.78, "ms", 0.33, goal));
    expect(row("≤ 0.5 ms").met).toBe(false);
    expect(row("added ≤ 0.5 ms").met).toBe(true);
    expect(row("added ≤ 0.4 ms").met).toBe(false);
    expect(row("≤ 2×").met).toBe(false);
    expect(row("ratio ≤ 2.5").met).toBe(true);
  });
});
