// warm: auto with real workers (300 ms boot): the warm target rises while new sessions arrive
// and the pool keeps that many idle workers; once arrivals stop it falls to 0 and the pool
// shrinks back to `min`. Only conditions are awaited (generous deadlines), never a duration.
import { afterEach, describe, expect, it } from "vitest";
import { eventually, herdFixture, recordEvents } from "../../test/helpers/herd.ts";

const fx = herdFixture();
afterEach(() => fx.cleanup());

describe("warm: auto", () => {
  it("raises the target with arrivals, keeps that many warm, and falls to min after", async () => {
    const herd = await fx.start({
      min: 1,
      max: 8,
      warm: "auto",
      warmWindowMs: 4_000,
      env: { WORKER_START_DELAY_MS: "300" },
      startTimeoutMs: 60_000,
    });
    const log = recordEvents(herd);
    const pool = () => herd.stats("w").pools[0]!;
    expect(pool()).toMatchObject({ workersTotal: 1, warmTarget: 0, arrivalRate: 0 });

    // New sessions keep arriving (each released at once) until told to stop.
    let arriving = true;
    let n = 0;
    const traffic = (async () => {
      while (arriving) {
        const s = await herd.acquire("w", `s-${n++}`, { waitMs: 60_000 });
        await herd.release(s.id);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    try {
      // The target rises above 0 and the pool holds idle workers beyond min, booted for it.
      const risen = await eventually(
        "the warm target to rise and idle workers to be kept for it",
        () => {
          const p = pool();
          return p.warmTarget >= 2 && p.workersIdle >= 2 && p.bootMs > 0 && p.arrivalRate > 0
            ? p
            : undefined;
        },
        60_000,
      );
      expect(risen.workersTotal).toBeGreaterThan(1);
      expect(risen.bootMs).toBeGreaterThanOrEqual(300);
    } finally {
      arriving = false;
      await traffic;
    }
    const rose = log.events.find((e) => e.type === "warm_target_changed");
    expect(rose?.warmTarget).toBeGreaterThan(0);
    expect(rose?.reason).toMatch(/new sessions\/s.* × boot \d+ ms/);

    // Demand stopped: a window later the target is 0 and the pool is back at min.
    await eventually(
      "the target to fall to 0 and the pool to shrink to min",
      () => {
        const p = pool();
        return p.warmTarget === 0 && p.workersTotal === 1 && p.arrivalRate === 0;
      },
      60_000,
    );
    const changes = log.events.filter((e) => e.type === "warm_target_changed");
    expect(changes.at(-1)?.warmTarget).toBe(0);
    const letGo = log.events.filter(
      (e) => e.type === "worker_stopped" && e.reason === "idle above the warm target",
    );
    expect(letGo.length).toBeGreaterThan(0);
    log.stop();
  }, 180_000);

  it("without warm: auto the pool keeps only min and reports no target", async () => {
    const herd = await fx.start({ min: 1, max: 4, env: { WORKER_START_DELAY_MS: "300" } });
    const log = recordEvents(herd);
    for (let i = 0; i < 10; i++) {
      const s = await herd.acquire("w", `f-${i}`, { waitMs: 60_000 });
      await herd.release(s.id);
    }
    const p = herd.stats("w").pools[0]!;
    expect(p).toMatchObject({ warmTarget: 0, arrivalRate: 0, workersTotal: 1 });
    expect(p.bootMs).toBeGreaterThanOrEqual(300);
    expect(log.events.some((e) => e.type === "warm_target_changed")).toBe(false);
    log.stop();
  }, 120_000);
});
