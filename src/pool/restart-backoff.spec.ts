import { describe, expect, it } from "vitest";
import { RestartBackoff } from "./restart-backoff.ts";

const opts = { initialMs: 1_000, maxMs: 8_000, resetAfterMs: 10_000, resume: () => {} };

describe("RestartBackoff", () => {
  it("restarts at once after one crash, then doubles the delay up to the cap", () => {
    const b = new RestartBackoff(opts);
    const delays = [0, 1, 2, 3, 4, 5].map((i) => b.crashed(100, `crash ${i}`, 1_000 * i));
    expect(delays).toEqual([0, 1_000, 2_000, 4_000, 8_000, 8_000]);
    expect(b.state(5_000)).toEqual({ streak: 6, remainingMs: 8_000, reason: "crash 5" });
  });

  it("ends the streak when a worker stays up, or after a quiet spell", () => {
    const b = new RestartBackoff(opts);
    b.crashed(0, "a", 0);
    b.crashed(0, "b", 10);
    expect(b.crashed(60_000, "after a long run", 100)).toBe(0);
    expect(b.state(100).streak).toBe(1);
    b.crashed(0, "c", 200); // delay 1 s
    expect(b.crashed(0, "much later", 200 + 1_000 + 10_000)).toBe(0);
    b.reset();
    expect(b.state()).toEqual({ streak: 0, remainingMs: 0 });
  });
});
