import { describe, expect, it } from "vitest";
import { isHerdError } from "../core/index.ts";
import { CallerLimits } from "./caller-limits.ts";

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (isHerdError(err, "resource_exhausted")) return err.message;
    throw err;
  }
  throw new Error("not refused");
}

describe("CallerLimits", () => {
  it("counts each caller and kind apart, and refuses past the cap naming the setting", () => {
    const limits = new CallerLimits({ watchers: 2, holds: 1 });
    const a1 = limits.take("watchers", "a");
    limits.take("watchers", "a");
    expect(refusal(() => limits.take("watchers", "a"))).toBe(
      "a has 2 WatchSessions streams open, the most control.max_watchers_per_caller (2) allows: end one first",
    );
    limits.take("watchers", "b");
    limits.take("holds", "a");
    expect(refusal(() => limits.take("holds", "a"))).toContain("control.max_holds_per_caller (1)");
    expect(limits.count("watchers")).toBe(3);
    // A slot given back twice is given back once.
    a1();
    a1();
    expect(limits.count("watchers")).toBe(2);
    limits.take("watchers", "a");
    expect(() => limits.take("watchers", "a")).toThrow();
  });

  it("caps nothing at 0, and counts no call of an unknown caller (a peer node's)", () => {
    const limits = new CallerLimits({ watchers: 0, holds: 1 });
    for (let i = 0; i < 1000; i++) limits.take("watchers", "a");
    expect(limits.count("watchers")).toBe(1000);
    for (let i = 0; i < 10; i++) limits.take("holds", undefined);
    expect(limits.count("holds")).toBe(0);
  });
});
