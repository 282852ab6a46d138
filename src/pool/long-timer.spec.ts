import { describe, expect, it, vi } from "vitest";
import { MAX_TIMER_MS, setLongTimeout } from "./long-timer.ts";

describe("setLongTimeout", () => {
  it("waits out delays beyond Node's 24.8-day timer limit instead of firing at once", () => {
    vi.useFakeTimers();
    try {
      const fired = vi.fn();
      const tenThousandYears = 10_000 * 365 * 24 * 3_600_000;
      setLongTimeout(fired, tenThousandYears);
      vi.advanceTimersByTime(1_000);
      expect(fired).not.toHaveBeenCalled();
      vi.advanceTimersByTime(3 * MAX_TIMER_MS);
      expect(fired).not.toHaveBeenCalled();
      const thirtyDays = vi.fn();
      setLongTimeout(thirtyDays, 30 * 24 * 3_600_000);
      vi.advanceTimersByTime(29 * 24 * 3_600_000);
      expect(thirtyDays).not.toHaveBeenCalled();
      vi.advanceTimersByTime(24 * 3_600_000);
      expect(thirtyDays).toHaveBeenCalledTimes(1);
    } finally {
      vi.useRealTimers();
    }
  });

  it("fires short delays once and never after clear", async () => {
    const fired = vi.fn();
    setLongTimeout(fired, 5);
    const cleared = vi.fn();
    setLongTimeout(cleared, 5).clear();
    await new Promise((r) => setTimeout(r, 50));
    expect(fired).toHaveBeenCalledTimes(1);
    expect(cleared).not.toHaveBeenCalled();
  });
});
