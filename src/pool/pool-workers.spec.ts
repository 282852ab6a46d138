// A pool's workers alone, on fake workers: what the pool makes of each (kept beside the worker,
// never written into it), min kept warm, idle retirement, a newly idle worker offered to the
// queue first, and the crash note a stop reason quotes. pool.spec.ts checks them through Pool.
import { afterEach, describe, expect, it } from "vitest";
import { FakeWorker } from "../../test/helpers/fake-worker.ts";
import { eventually } from "../../test/helpers/herd.ts";
import type { HerdEventType } from "../core/index.ts";
import { silentLogger } from "../core/index.ts";
import { resolvePoolOptions } from "./options.ts";
import type { PoolWorker } from "./pool-worker.ts";
import { type EventFields, PoolWorkers } from "./pool-workers.ts";
import { PortReservations } from "./worker.ts";

const shutdowns: AbortController[] = [];
const rosters: PoolWorkers[] = [];
afterEach(async () => {
  for (const shutdown of shutdowns.splice(0)) shutdown.abort();
  for (const roster of rosters.splice(0)) {
    await roster.close();
    await Promise.allSettled(roster.retireAll("spec over"));
  }
});

/** A roster of fake workers, each ready as soon as it is made; `offer` stands for the queue. */
function roster(options: Record<string, unknown>, offer: (w: PoolWorker) => boolean = () => false) {
  const workers: FakeWorker[] = [];
  const events: { type: HerdEventType; fields: EventFields }[] = [];
  const shutdown = new AbortController();
  const pool = new PoolWorkers(
    resolvePoolOptions({ name: "w", command: ["unused"], ...options }),
    {
      caps: {
        pidNamespace: false,
        cgroups: { v2Controllers: new Set(), v1: new Map() },
        missing: [],
      },
      ports: new PortReservations(),
      cgroups: undefined,
      logger: silentLogger,
      nextWorkerId: (name) => `${name}-${workers.length + 1}`,
      workers: (id, hooks) => {
        const worker = new FakeWorker(id, hooks, 100 + workers.length);
        workers.push(worker);
        worker.finish();
        return worker;
      },
    },
    shutdown.signal,
    {
      emit: (type, fields) => events.push({ type, fields }),
      onFailure: () => {},
      offer: (w) => offer(w),
      waiting: () => 0,
      startFailed: () => {},
      pump: () => {},
    },
  );
  shutdowns.push(shutdown);
  rosters.push(pool);
  return { pool, workers, events };
}

describe("PoolWorkers on fake workers", () => {
  it("keeps what it makes of a worker beside it: busy, cleaning, idle again once the strays are killed", async () => {
    const { pool, workers } = roster({ min: 1, max: 1 });
    await pool.start();
    const worker = pool.popIdle()!;
    pool.assign(worker, "s1");
    expect(pool.sessionOf(worker)).toBe("s1");
    expect(pool.counts()).toEqual({ total: 1, idle: 0, busy: 1, starting: 0 });
    pool.release(worker);
    expect(pool.sessionOf(worker)).toBeUndefined();
    expect(pool.isCleaning(worker)).toBe(true);
    expect(pool.counts().busy).toBe(1); // nobody can take it while its strays are killed
    await pool.reuse(worker, "session s1 released");
    expect(workers[0]!.strays).toBe(1);
    expect(pool.counts()).toEqual({ total: 1, idle: 1, busy: 0, starting: 0 });
    expect(worker.state).toEqual({ kind: "ready" }); // the pool wrote nothing into the worker
  });

  it("hands a newly idle worker to the queue before the idle list", async () => {
    let served: PoolWorker | undefined;
    const { pool } = roster({ max: 2 }, (w) => {
      served = w;
      pool.assign(w, "waiter");
      return true;
    });
    pool.startFor(1);
    expect(pool.counts().starting).toBe(1);
    expect(pool.room()).toBe(2); // one starting, one yet to start
    await eventually("the started worker served", () => served !== undefined);
    expect(pool.sessionOf(served!)).toBe("waiter");
    expect(pool.counts()).toEqual({ total: 1, idle: 0, busy: 1, starting: 0 });
  });

  it("retires surplus idle workers after idle_worker_ttl, never below min, and replaces a retired one up to min", async () => {
    const { pool, workers } = roster({ min: 1, max: 3, idleWorkerTtlMs: 30 });
    await pool.start();
    pool.startFor(2);
    await eventually("3 idle workers", () => pool.counts().idle === 3);
    expect(pool.atMax()).toBe(false);
    await eventually("the surplus retired", () => pool.counts().total === 1);
    expect(workers.filter((w) => w.stops === 1)).toHaveLength(2);
    const last = pool.popIdle()!;
    await pool.retire(last, "spec", 0);
    await eventually("a replacement idle", () => workers.length === 4 && pool.counts().idle === 1);
    expect(pool.counts().total).toBe(1);
  });

  it("quotes the crash note in the stop reason of the worker whose crash started a backoff", async () => {
    const { pool, events } = roster({ min: 0, max: 2, restartBackoffMs: 5_000 });
    pool.startFor(2);
    await eventually("2 idle workers", () => pool.counts().idle === 2);
    const first = pool.popIdle()!;
    const second = pool.popIdle()!;
    pool.crashed(first, "exited with code 1"); // one crash is no loop
    pool.crashed(second, "exited with code 1");
    await pool.retire(first, "exited with code 1", 0);
    await pool.retire(second, "exited with code 1", 0);
    const reasons = events.filter((e) => e.type === "worker_stopped").map((e) => e.fields.reason);
    expect(reasons).toEqual([
      "exited with code 1",
      "exited with code 1; crash 2 in a row: next start in 5000 ms",
    ]);
    expect(pool.crashState().streak).toBe(2);
  });
});
