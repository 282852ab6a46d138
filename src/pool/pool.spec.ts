// The pool's own rules — singleflight, the FIFO queue at max, reuse, a lost worker — on fake
// workers (PoolDeps.workers): no process, no port, each start finished when the spec says so.
// herd.spec.ts checks the same engine with real process trees.
import { afterEach, describe, expect, it } from "vitest";
import { FakeWorker } from "../../test/helpers/fake-worker.ts";
import type { HerdEvent, HerdEventType } from "../core/index.ts";
import { isHerdError, silentLogger } from "../core/index.ts";
import { EventLog } from "./event-log.ts";
import { resolvePoolOptions } from "./options.ts";
import { Pool } from "./pool.ts";
import { InMemorySessionRegistry } from "./session-registry.ts";
import { PortReservations } from "./worker.ts";

const pools: Pool[] = [];
afterEach(async () => {
  for (const pool of pools.splice(0)) await pool.close();
});

/** A pool on fake workers; `autoStart`: every worker is ready as soon as it is made. */
function fakePool(options: Record<string, unknown> = {}, autoStart = true) {
  const workers: FakeWorker[] = [];
  const events = new EventLog();
  const seen: HerdEvent[] = [];
  events.subscribe();
  const append = events.append.bind(events);
  events.append = (event) => {
    const full = append(event);
    seen.push(full);
    return full;
  };
  const pool = new Pool(resolvePoolOptions({ name: "w", command: ["unused"], ...options }), {
    caps: {
      pidNamespace: false,
      cgroups: { v2Controllers: new Set(), v1: new Map() },
      missing: [],
    },
    containment: [],
    ports: new PortReservations(),
    cgroups: undefined,
    events,
    registry: new InMemorySessionRegistry(),
    logger: silentLogger,
    nextWorkerId: (name) => `${name}-${workers.length + 1}`,
    workers: (id, hooks) => {
      const worker = new FakeWorker(id, hooks, 100 + workers.length);
      workers.push(worker);
      if (autoStart) worker.finish();
      return worker;
    },
  });
  pools.push(pool);
  const types = (): HerdEventType[] => seen.map((e) => e.type);
  return { pool, workers, types, seen };
}

/** Lets pending promise callbacks (a fake start, a stop) run. */
const settle = () => new Promise((r) => setImmediate(r));

describe("Pool on fake workers", () => {
  it("starts min workers, and gives concurrent acquires of one new id one worker", async () => {
    const { pool, workers } = fakePool({ min: 1, max: 5 }, false);
    const started = pool.start();
    expect(workers).toHaveLength(1);
    workers[0]!.finish();
    await started;
    const sessions = await Promise.all(Array.from({ length: 20 }, () => pool.acquire("a", {})));
    expect(new Set(sessions.map((s) => s.workerId))).toEqual(new Set(["w-1"]));
    expect(workers).toHaveLength(1);
    expect(pool.stats()).toMatchObject({ workersTotal: 1, workersBusy: 1, sessions: 1 });
  });

  it("queues at max in arrival order, and serves the queue from a released, reused worker", async () => {
    const { pool, workers } = fakePool({ max: 1, reuse: true });
    const first = await pool.acquire("first", {});
    const order: string[] = [];
    const second = pool.acquire("second", {}).then((s) => order.push(s.id));
    const third = pool.acquire("third", {}).then((s) => order.push(s.id));
    await settle();
    expect(pool.stats().queued).toBe(2);
    await pool.release(first.id, {});
    await second;
    expect(order).toEqual(["second"]);
    expect(workers[0]!.strays).toBe(1); // what the first session left was killed before reuse
    await pool.release("second", {});
    await third;
    expect(order).toEqual(["second", "third"]);
    expect(workers).toHaveLength(1);
    expect(pool.lookup("third")?.workerId).toBe("w-1");
  });

  it("takes a waiter that gave up out of the queue: the next free worker goes to nobody else", async () => {
    const { pool } = fakePool({ max: 1, reuse: true });
    await pool.acquire("holder", {});
    const gaveUp = await pool.acquire("late", { waitMs: 20 }).catch((e: unknown) => e);
    expect(isHerdError(gaveUp, "deadline_exceeded")).toBe(true);
    expect(pool.stats().queued).toBe(0);
    await pool.release("holder", {});
    await settle();
    expect(pool.lookup("late")).toBeUndefined();
    expect(pool.stats()).toMatchObject({ workersIdle: 1, workersBusy: 0, sessions: 0 });
  });

  it("refuses beyond the queue limit at once", async () => {
    const { pool } = fakePool({ max: 1, queueLimit: 1 });
    await pool.acquire("holder", {});
    const queued = pool.acquire("queued", { waitMs: 60_000 });
    const refused = await pool.acquire("refused", {}).catch((e: unknown) => e);
    expect(isHerdError(refused, "resource_exhausted")).toBe(true);
    await pool.release("holder", { kill: true });
    expect((await queued).id).toBe("queued");
  });

  it("loses the session of a worker that fails, and kills that worker", async () => {
    const { pool, workers, seen } = fakePool({ max: 2 });
    const session = await pool.acquire("doomed", {});
    const lease = pool.lease(session.id, "http");
    const worker = workers[0]!;
    worker.hooks.onFailure(worker, "exited with code 3", {
      code: 3,
      signal: null,
      oom: false,
      stderrTail: ["boom"],
    });
    await settle();
    expect(lease.ended.aborted).toBe(true);
    expect(lease.ended.reason).toMatchObject({ kind: "lost", reason: "exited with code 3" });
    expect(pool.lookup("doomed")).toBeUndefined();
    expect(worker.stops).toBe(1);
    const lost = seen.find((e) => e.type === "session_lost");
    expect(lost).toMatchObject({ sessionId: "doomed", reason: "exited with code 3" });
    expect(lost?.exit?.code).toBe(3);
  });

  it("tells the oldest waiter why a start failed", async () => {
    const { pool, workers } = fakePool({ max: 1 }, false);
    const waiting = pool.acquire("a", {}).catch((e: unknown) => e);
    await settle();
    workers[0]!.finish(new Error("no such command"));
    const error = await waiting;
    expect(isHerdError(error, "unavailable")).toBe(true);
    expect(String(error)).toContain("no such command");
  });

  it("reports each session's end as one event of its kind", async () => {
    const { pool, types } = fakePool({ max: 3 });
    await pool.acquire("r", {});
    await pool.acquire("x", {});
    await pool.release("r", {});
    await pool.release("x", { end: { kind: "expired", reason: "idle_timeout" } });
    expect(types().filter((t) => t.startsWith("session_"))).toEqual([
      "session_acquired",
      "session_acquired",
      "session_released",
      "session_expired",
    ]);
  });
});
