import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { LazyDeadline } from "./lazy-deadline.ts";

describe("LazyDeadline", () => {
  it("fires once, not before the last deadline set, however often it was moved", async () => {
    const fired: number[] = [];
    const deadline = new LazyDeadline(() => fired.push(performance.now()));
    deadline.set(60);
    await sleep(40);
    // Moved while the first timer (60 ms) is pending: that timer must re-arm, not fire.
    const lastSet = performance.now();
    deadline.set(60);
    for (let waited = 0; fired.length === 0 && waited < 5_000; waited += 10) await sleep(10);
    await sleep(100);
    expect(fired).toHaveLength(1);
    // Timers are read on the event loop's clock, which may lag performance.now() by a tick.
    expect(fired[0]! - lastSet).toBeGreaterThanOrEqual(59);
    deadline.stop();
  });

  it("never fires after clear or stop, and a shorter deadline is not delayed by a longer one", async () => {
    let fired = 0;
    const deadline = new LazyDeadline(() => fired++);
    deadline.set(30);
    deadline.clear();
    await sleep(60);
    expect(fired).toBe(0);
    deadline.set(10_000);
    deadline.set(20);
    await sleep(80);
    expect(fired).toBe(1);
    deadline.set(20);
    deadline.stop();
    await sleep(60);
    expect(fired).toBe(1);
  });
});
