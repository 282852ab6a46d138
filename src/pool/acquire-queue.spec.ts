// The acquire queue alone: arrival order, the round across tenants by weight, admission,
// withdrawal, and the per-tick depth report. Its "workers" are plain strings: the queue only
// hands them over.
import { describe, expect, it } from "vitest";
import { prng } from "../../test/helpers/http1-cases.ts";
import { isHerdError } from "../core/index.ts";
import { AcquireQueue } from "./acquire-queue.ts";

function queue(queueLimit = 10, weights: Record<string, number> = {}) {
  const depths: number[] = [];
  const q = new AcquireQueue<string>(
    { name: "w", max: 2, queueLimit },
    (n) => depths.push(n),
    (tenant) => (tenant === undefined ? 1 : (weights[tenant] ?? 1)),
  );
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

  it("fails the next waiter alone when a start fails, and every waiter at shutdown", async () => {
    const { q } = queue();
    const never = new AbortController().signal;
    const results = [1, 2, 3].map(() => q.wait((w) => w, never).catch((e: unknown) => String(e)));
    q.failNext(new Error("start failed"));
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

  describe("across tenants", () => {
    /** Queues `n` waiters of `tenant`; each records `<tenant><i>` when served, in `order`. */
    function flood(
      q: AcquireQueue<string>,
      order: string[],
      tenant: string | undefined,
      n: number,
      signal = new AbortController().signal,
    ): Promise<unknown>[] {
      return Array.from({ length: n }, (_, i) =>
        q.wait(() => order.push(`${tenant ?? "op"}${i}`), signal, tenant),
      );
    }

    function serveAll(q: AcquireQueue<string>): void {
      let n = 0;
      while (q.serve(`w-${++n}`));
    }

    it("serves round-robin by weight, FIFO within a tenant, the operator one more tenant of weight 1", async () => {
      const { q } = queue(100, { a: 2, b: 1 });
      const order: string[] = [];
      const all = [...flood(q, order, "a", 6), ...flood(q, order, "b", 3)];
      all.push(...flood(q, order, undefined, 3));
      expect(q.waitingByTenant()).toEqual(
        new Map<string | undefined, number>([
          ["a", 6],
          ["b", 3],
          [undefined, 3],
        ]),
      );
      serveAll(q);
      await Promise.all(all);
      expect(order).toEqual(["a0 a1 b0 op0", "a2 a3 b1 op1", "a4 a5 b2 op2"].join(" ").split(" "));
      expect(q.length).toBe(0);
      expect(q.waitingByTenant().size).toBe(0);
    });

    it("serves a light tenant's one acquire within the next two, however many a flood queued first", async () => {
      const { q } = queue(100);
      const order: string[] = [];
      const heavy = flood(q, order, "a", 20);
      expect(q.serve("w-1")).toBe(true); // the round is under way, on a
      const light = flood(q, order, "b", 1);
      q.serve("w-2");
      q.serve("w-3");
      expect(order).toEqual(["a0", "a1", "b0"]);
      serveAll(q);
      await Promise.all([...heavy, ...light]);
      expect(order.slice(3)).toEqual(Array.from({ length: 18 }, (_, i) => `a${i + 2}`));
    });

    it("admits a tenant below its share of a full queue: one tenant's flood cannot fill it against another", () => {
      const { q } = queue(4, { heavy: 3 });
      const order: string[] = [];
      const queueFor = (tenant: string | undefined) => {
        const refused = q.refusal(0, undefined, tenant);
        if (!refused) void flood(q, order, tenant, 1)[0]!.catch(() => {});
        return refused?.message;
      };
      for (let i = 0; i < 4; i++) expect(queueFor("a")).toBeUndefined();
      expect(queueFor("a")).toBe(
        "pool w is at max (2 workers) with 4 acquires queued (queue_limit 4)",
      );
      // b's share of the 4 places is 2 (a and b weigh 1 each): admitted beyond the limit, twice.
      expect(queueFor("b")).toBeUndefined();
      expect(queueFor("b")).toBeUndefined();
      expect(queueFor("b")).toBe(
        "pool w is at max (2 workers) with 6 acquires queued (queue_limit 4); 2 of them tenant b's, its share",
      );
      // The operator's share is 4 × 1 ÷ 3 (a, b and it): admitted while it has fewer than 1.33.
      expect(queueFor(undefined)).toBeUndefined();
      expect(queueFor(undefined)).toBeUndefined();
      // Twice the places (room 0 + queue_limit 4) wait: nobody else queues, whatever its share.
      expect(queueFor("heavy")).toBe(
        "pool w is at max (2 workers) with 8 acquires queued (queue_limit 4)",
      );
      expect(q.refusal(0, 0, "newcomer")?.message).toMatch(/^pool w is at max/); // waits for nothing
      expect(q.length).toBe(8);
      q.failAll(new Error("closing"));
    });

    it("gives a fractional weight its turn every other round, and credits a weight only on its visit", async () => {
      const { q } = queue(100, { slow: 0.5 });
      const order: string[] = [];
      const all = [...flood(q, order, "slow", 3), ...flood(q, order, "b", 6)];
      serveAll(q);
      await Promise.all(all);
      expect(order).toEqual("b0 slow0 b1 b2 slow1 b3 b4 slow2 b5".split(" "));
    });

    it("takes a tenant whose waiters gave up (or timed out) out of the round, and lets it rejoin at the end", async () => {
      const { q } = queue(100);
      const order: string[] = [];
      const a = flood(q, order, "a", 3);
      const gone = new AbortController();
      const b = flood(q, order, "b", 2, gone.signal).map((p) => p.catch((e: unknown) => e));
      const c = flood(q, order, "c", 1, AbortSignal.timeout(20)).map((p) =>
        p.catch((e: unknown) => e),
      );
      const d = flood(q, order, "d", 1);
      q.serve("w-1"); // a0; the cursor moves on to b
      gone.abort(new Error("gave up")); // b leaves the ring at the cursor: c is next
      expect(String(await b[0])).toContain("gave up");
      expect((await c[0]) as Error).toMatchObject({ name: "TimeoutError" }); // and c leaves too
      expect(q.length).toBe(3);
      expect([...q.waitingByTenant().keys()]).toEqual(["a", "d"]);
      q.serve("w-2"); // d
      const b2 = flood(q, order, "b", 1); // b rejoins, behind a
      serveAll(q);
      await Promise.all([...a, d[0], b2[0]]);
      expect(order).toEqual(["a0", "d0", "a1", "b0", "a2"]);
    });

    it("fails the waiter next in the round when a start fails", async () => {
      const { q } = queue(100);
      const out: string[] = [];
      const never = new AbortController().signal;
      const a = [1, 2].map((i) =>
        q.wait(() => out.push(`a${i}`), never, "a").catch(() => out.push(`a${i} failed`)),
      );
      const b = q.wait(() => out.push("b"), never, "b").catch(() => out.push("b failed"));
      q.serve("w-1"); // a1; the cursor moves on to b
      q.failNext(new Error("start failed"));
      await b;
      q.serve("w-2");
      await Promise.all(a);
      expect(out).toEqual(["a1", "b failed", "a2"]);
    });

    it("keeps its books under random waits, withdrawals and serves: each waiter settles once, FIFO within a tenant", async () => {
      const r = prng(20);
      const { q } = queue(100_000, { a: 2, b: 1, c: 0.5 });
      const tenants = ["a", "b", "c", undefined] as const;
      interface Probe {
        tenant: string | undefined;
        seq: number;
        abort?: AbortController;
        settled: number;
        outcome?: "served" | "withdrawn";
      }
      const pending: Probe[] = [];
      const all: Probe[] = [];
      const servedSeqs = new Map<string | undefined, number[]>();
      const settles: Promise<unknown>[] = [];
      for (let step = 0; step < 5_000; step++) {
        const op = r.next();
        if (op < 0.5) {
          const p: Probe = { tenant: r.pick(tenants), seq: all.length, settled: 0 };
          if (r.next() < 0.3) p.abort = new AbortController();
          all.push(p);
          pending.push(p);
          const signal = p.abort?.signal ?? new AbortController().signal;
          const served = q.wait(
            () => {
              p.settled++;
              p.outcome = "served";
              const seqs = servedSeqs.get(p.tenant) ?? [];
              seqs.push(p.seq);
              servedSeqs.set(p.tenant, seqs);
            },
            signal,
            p.tenant,
          );
          settles.push(
            served.catch(() => {
              p.settled++;
              p.outcome = "withdrawn";
            }),
          );
        } else if (op < 0.65) {
          const cancellable = pending.filter((p) => p.abort && !p.abort.signal.aborted);
          if (cancellable.length > 0) {
            const p = r.pick(cancellable);
            p.abort!.abort(new Error("gave up"));
            pending.splice(pending.indexOf(p), 1);
          }
        } else {
          const before = pending.length;
          expect(q.serve(`w-${step}`)).toBe(before > 0);
          // take runs in the serve's tick: the served waiter is known at once.
          const i = pending.findIndex((p) => p.outcome === "served");
          if (i >= 0) pending.splice(i, 1);
          expect(pending.length).toBe(Math.max(0, before - 1));
        }
        expect(q.length).toBe(pending.length);
        const byTenant = new Map<string | undefined, number>();
        for (const p of pending) byTenant.set(p.tenant, (byTenant.get(p.tenant) ?? 0) + 1);
        expect(new Map([...q.waitingByTenant()].sort())).toEqual(new Map([...byTenant].sort()));
      }
      while (q.serve("drain"));
      await Promise.all(settles);
      expect(all.every((p) => p.settled === 1)).toBe(true);
      expect(all.filter((p) => p.outcome === "withdrawn").every((p) => p.abort)).toBe(true);
      for (const seqs of servedSeqs.values()) {
        expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
      }
    });
  });
});
