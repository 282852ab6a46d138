// Fair share with real worker processes: a full pool's queue served round-robin across tenants
// (acquire-queue.ts), weights from HerdOptions.tenantWeight, the tenant recorded on the session,
// and preempt_idle's scope (preemption.ts). fair-share.spec.ts and acquire-queue.spec.ts check
// the same rules as pure functions.
import { afterEach, describe, expect, it } from "vitest";
import { eventually, herdFixture, recordEvents } from "../../test/helpers/herd.ts";
import type { SessionInfo } from "../core/index.ts";
import type { Herd } from "./herd.ts";

const fx = herdFixture();
afterEach(() => fx.cleanup());

/** Acquires in the order the pool served them, and the live ones oldest first. */
function served(herd: Herd) {
  const order: string[] = [];
  const live: string[] = [];
  return {
    order,
    acquire(id: string, tenant: string | undefined): Promise<unknown> {
      const opts = { waitMs: 120_000, ...(tenant !== undefined ? { tenant } : {}) };
      return herd.acquire("w", id, opts).then(
        (s: SessionInfo) => {
          order.push(s.id);
          live.push(s.id);
        },
        (err: unknown) => err, // the rest of the queue fails at the fixture's close
      );
    },
    /** Releases the oldest live session and waits until its worker served the next waiter. */
    async releaseOldest(): Promise<void> {
      const before = order.length;
      await herd.release(live.shift()!);
      await eventually("the freed worker serving the next waiter", () => order.length > before);
    },
  };
}

const queued = (herd: Herd) => herd.stats().pools[0]?.queued ?? 0;

describe("a full pool's queue across tenants", () => {
  it("serves tenant b's one acquire within the next 2 releases behind tenant a's 20, FIFO within a", async () => {
    // a's 20 fill the queue (queue_limit 20): a's next is refused, b's is not (its share).
    const herd = await fx.start({ max: 2, reuse: true, queueLimit: 20 });
    const rec = recordEvents(herd);
    const s = served(herd);
    await s.acquire("a-0", "a");
    await s.acquire("a-1", "a");
    for (let i = 2; i < 22; i++) void s.acquire(`a-${i}`, "a");
    await eventually("a's 20 acquires queued", () => queued(herd) === 20);
    await expect(herd.acquire("w", "a-22", { tenant: "a" })).rejects.toMatchObject({
      code: "resource_exhausted",
    });
    void s.acquire("b-0", "b");
    await eventually("b's acquire queued", () => queued(herd) === 21);
    await s.releaseOldest();
    await s.releaseOldest();
    expect(s.order).toEqual(["a-0", "a-1", "a-2", "b-0"]);
    expect(herd.lookup("b-0")?.tenant).toBe("b");
    await s.releaseOldest();
    await s.releaseOldest();
    expect(s.order.slice(4)).toEqual(["a-3", "a-4"]);
    expect(herd.lookup("a-4")?.tenant).toBe("a");
    const acquired = rec.events.find((e) => e.type === "session_acquired" && e.sessionId === "b-0");
    expect(acquired?.session?.tenant).toBe("b");
    rec.stop();
  });

  it("gives a tenant its weight's turns per round (HerdOptions.tenantWeight), the operator one", async () => {
    const herd = await fx.startWith(
      { tenantWeight: (t) => (t === "heavy" ? 2 : 1) },
      { max: 1, reuse: true },
    );
    const s = served(herd);
    await s.acquire("op-0", undefined);
    for (let i = 0; i < 4; i++) void s.acquire(`heavy-${i}`, "heavy");
    for (let i = 0; i < 2; i++) void s.acquire(`light-${i}`, "light");
    for (let i = 1; i < 3; i++) void s.acquire(`op-${i}`, undefined);
    await eventually("8 acquires queued", () => queued(herd) === 8);
    for (let i = 0; i < 8; i++) await s.releaseOldest();
    expect(s.order).toEqual(
      "op-0 heavy-0 heavy-1 light-0 op-1 heavy-2 heavy-3 light-1 op-2".split(" "),
    );
    expect(herd.lookup("op-2")?.tenant).toBeUndefined();
  });
});

describe("preempt_idle across tenants", () => {
  it("takes an idle session from a tenant above its fair share, never from one at its share", async () => {
    const herd = await fx.start({ max: 2, preemptIdleMs: 300, reuse: true });
    const rec = recordEvents(herd);
    const a1 = await herd.acquire("w", "a-1", { tenant: "a" });
    await herd.acquire("w", "a-2", { tenant: "a" });
    // a holds both workers, 2 above its share of 1 (a and b contend, weight 1 each): its
    // idlest session yields to b.
    const b1 = await herd.acquire("w", "b-1", { tenant: "b", waitMs: 30_000 });
    expect(b1.workerPid).toBe(a1.workerPid);
    expect(herd.lookup("a-1")).toBeUndefined();
    const ended = rec.events.find((e) => e.sessionId === "a-1" && e.type === "session_expired");
    expect(ended?.reason).toBe("preempted");
    // Now a holds 1, its share: b's next acquire waits out its deadline, a-2 idle all along.
    const busy = herd.lease("b-1", "http");
    await expect(herd.acquire("w", "b-2", { tenant: "b", waitMs: 1_500 })).rejects.toMatchObject({
      code: "deadline_exceeded",
    });
    expect(Date.now() - (herd.lookup("a-2")?.lastActiveAt.getTime() ?? 0)).toBeGreaterThan(300);
    expect(herd.lookup("a-2")?.tenant).toBe("a");
    busy.close();
    rec.stop();
  });
});
