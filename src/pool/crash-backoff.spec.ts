import { afterEach, describe, expect, it } from "vitest";
import { eventually, herdFixture, recordEvents } from "../../test/helpers/herd.ts";

const fx = herdFixture();
afterEach(() => fx.cleanup());

// Serves, then exits 150 ms after it started listening: ready, then gone, every time.
const CRASHES_SOON = `
const server = require("node:http").createServer((q, r) => r.end("ok"));
server.listen(Number(process.env.PORT), "127.0.0.1", () => setTimeout(() => {
  console.error("fatal: config missing");
  process.exit(3);
}, 150));
`;

describe("crash-loop backoff", () => {
  it("restarts a worker that keeps dying after it became ready with a growing delay, and says so", async () => {
    const herd = await fx.start({
      min: 1,
      max: 2,
      command: [process.execPath, "-e", CRASHES_SOON],
      ready: { kind: "tcp" },
      healthPath: undefined,
      restartBackoffMs: 400,
      restartBackoffMaxMs: 1_600,
      restartStableMs: 10_000,
    });
    const rec = recordEvents(herd);
    const pool = () => herd.stats().pools[0]!;
    // In backoff, with nothing running: the pool waits instead of spawning.
    await eventually("a backoff of more than 500 ms with no worker", () => {
      const p = pool();
      return p.crashStreak >= 3 && p.restartBackoffMs > 500 && p.workersTotal === 0;
    });
    expect(pool().lastCrash).toMatch(/exited with code 3; stderr: fatal: config missing/);
    const err = await herd.acquire("w", "s", { waitMs: 200 }).catch((e: Error) => e);
    expect(err).toMatchObject({
      code: "unavailable",
      message: expect.stringMatching(
        /pool w is crash-looping: \d+ workers in a row died soon after starting \(last: exited with code 3.*\); next start in \d+ ms/,
      ),
    });
    const stopped = rec.events.filter((e) => e.type === "worker_stopped");
    expect(
      stopped.some((e) => /crash \d+ in a row: next start in \d+ ms/.test(e.reason ?? "")),
    ).toBe(true);
    // Delays are floors: the gap between starts grows past the first backoff step.
    const starts = rec.events.filter((e) => e.type === "worker_started").map((e) => +e.time);
    const gaps = starts.slice(1).map((t, i) => t - starts[i]!);
    expect(Math.max(...gaps)).toBeGreaterThanOrEqual(400);
    expect(starts.length).toBeLessThan(8);
    rec.stop();
  });
});
