import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { LazyDeadline } from "./lazy-deadline.ts";

describe("LazyDeadline", () => {
  it("fires once, not before the last deadline set, however often it was moved", async () => {
    const fired: number[] = [];
    const start = performance.now();
    const deadline = new LazyDeadline(() => fired.push(performance.now() - start));
    deadline.set(60);
    await sleep(40);
    deadline.set(60); // now due at ~100 ms: the first timer (60 ms) must not fire it
    await sleep(40);
    expect(fired).toEqual([]);
    await sleep(120);
    expect(fired).toHaveLength(1);
    expect(fired[0]).toBeGreaterThanOrEqual(99);
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
