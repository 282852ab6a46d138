// The acquire queue alone: arrival order, admission, withdrawal, and the per-tick depth report.
// Its "workers" are plain strings: the queue only hands them over.
import { describe, expect, it } from "vitest";
import { isHerdError } from "../core/index.ts";
import { AcquireQueue } from "./acquire-queue.ts";

function queue(queueLimit = 10) {
  const depths: number[] = [];
  const q = new AcquireQueue<string>({ name: "w", max: 2, queueLimit }, (n) => depths.push(n));
  return { q, depths };
}

/** Queues a waiter whose outcome the spec does not look at (a failure is expected, not stray). */
function hold(q: AcquireQueue<string>): void {
  q.wait((w) => w, new AbortController().signal).catch(() => {});
}

/** Lets the depth report (a microtask) and settled waits run. */
const settle = () => new Promise((r) => setImmediate(r));

describe("AcquireQueue", () => {
  it("serves waiters oldest first, running take in the tick the worker is handed over", async () => {
    const { q } = queue();
    const order: string[] = [];
    const never = new AbortController().signal;
    const first = q.wait((w) => order.push(`first:${w}`), never);
    const second = q.wait((w) => order.push(`second:${w}`), never);
    expect(q.serve("w-1")).toBe(true);
    expect(order).toEqual(["first:w-1"]); // synchronously, before any await
    expect(q.serve("w-2")).toBe(true);
    expect(order).toEqual(["first:w-1", "second:w-2"]);
    expect(q.serve("w-3")).toBe(false);
    await Promise.all([first, second]);
    expect(q.length).toBe(0);
  });

  it("takes a withdrawn waiter out at once, so the next worker goes to the one behind it", async () => {
    const { q } = queue();
    const gone = new AbortController();
    const withdrawn = q.wait((w) => w, gone.signal).catch((e: unknown) => e);
    const stays = q.wait((w) => w, new AbortController().signal);
    gone.abort(new Error("gave up"));
    expect(q.length).toBe(1);
    expect(q.serve("w-1")).toBe(true);
    expect(await stays).toBe("w-1");
    expect(String(await withdrawn)).toContain("gave up");
  });

  it("refuses beyond queue_limit more than the room, and beyond the room for a caller that will not wait", () => {
    const { q } = queue(1);
    expect(q.refusal(1, undefined)).toBeUndefined();
    hold(q);
    expect(q.refusal(1, undefined)).toBeUndefined(); // 1 ahead < room 1 + limit 1
    expect(q.refusal(1, 0)).toSatisfy((e) => isHerdError(e, "resource_exhausted")); // 1 ahead ≥ room 1
    hold(q);
    const full = q.refusal(1, undefined);
    expect(isHerdError(full, "resource_exhausted")).toBe(true);
    expect(full?.message).toBe(
      "pool w is at max (2 workers) with 2 acquires queued (queue_limit 1)",
    );
    q.failAll(new Error("closing"));
  });

  it("fails the oldest waiter alone when a start fails, and every waiter at shutdown", async () => {
    const { q } = queue();
    const never = new AbortController().signal;
    const results = [1, 2, 3].map(() => q.wait((w) => w, never).catch((e: unknown) => String(e)));
    q.failOldest(new Error("start failed"));
    expect(q.length).toBe(2);
    q.failAll(new Error("shutting down"));
    expect(q.length).toBe(0);
    expect(await Promise.all(results)).toEqual([
      "Error: start failed",
      "Error: shutting down",
      "Error: shutting down",
    ]);
  });

  it("reports the depth once per tick, and only when it changed", async () => {
    const { q, depths } = queue();
    hold(q);
    hold(q);
    hold(q);
    await settle();
    expect(depths).toEqual([3]);
    q.serve("w-1");
    hold(q); // back to 3 within the tick: nothing to report
    await settle();
    expect(depths).toEqual([3]);
    q.serve("w-2");
    await settle();
    expect(depths).toEqual([3, 2]);
    q.failAll(new Error("closing"));
  });
});
