// A warm: auto pool's decisions, as every reader sees them: GetStats (warm_target,
// arrival_rate, boot_time), WatchSessions (WARM_TARGET_CHANGED), /metrics and `herd status`.
// Real workers (300 ms boot) behind a real control plane.
import { durationMs } from "@bufbuild/protobuf/wkt";
import { afterEach, describe, expect, it } from "vitest";
import { SessionEventType } from "../../gen/herd/v1/herd_pb.ts";
import {
  type Harness,
  herdClient,
  startHarness,
} from "../../test/helpers/control-plane-harness.ts";
import { eventually } from "../../test/helpers/herd.ts";
import { status } from "./status.ts";

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

describe("warm: auto in GetStats, events, metrics and herd status", () => {
  it("shows the target, the arrival rate and the measured boot time", async () => {
    h = await startHarness([
      {
        min: 0,
        max: 6,
        warm: "auto",
        warmWindowMs: 30_000,
        env: { WORKER_START_DELAY_MS: "300" },
        startTimeoutMs: 60_000,
      },
    ]);
    const c = herdClient("connect-h1", h.cp.url);
    const watch = c.watchSessions({ pool: "w" })[Symbol.asyncIterator]();
    for (let i = 0; i < 6; i++) {
      await c.acquireSession({ sessionId: `a${i}`, pool: "w" });
      await c.releaseSession({ sessionId: `a${i}` });
    }
    const pool = await eventually("a warm target in GetStats", async () => {
      const [p] = (await c.getStats({ pool: "w" })).pools;
      return p && p.warmTarget > 0 && p.bootTime ? p : undefined;
    });
    expect(pool.arrivalRate).toBeGreaterThan(0);
    expect(durationMs(pool.bootTime!)).toBeGreaterThanOrEqual(300);

    let changed: { warmTarget: number; reason: string } | undefined;
    while (!changed) {
      const { value } = await watch.next();
      if (value?.type === SessionEventType.WARM_TARGET_CHANGED) changed = value;
    }
    await watch.return?.();
    expect(changed.warmTarget).toBeGreaterThan(0);
    expect(changed.reason).toMatch(/new sessions\/s/);

    const metrics = await (await fetch(`${h.cp.url}/metrics`)).text();
    const gauge = (name: string) =>
      Number(new RegExp(`^${name}\\{pool="w"\\} (\\S+)$`, "m").exec(metrics)?.[1]);
    expect(gauge("herd_pool_warm_target")).toBeGreaterThan(0);
    expect(gauge("herd_pool_arrival_rate")).toBeGreaterThan(0);
    expect(gauge("herd_pool_boot_seconds")).toBeGreaterThanOrEqual(0.3);

    const lines: string[] = [];
    await status({ client: c, where: h.cp.url }, { json: false }, (t) => lines.push(t));
    expect(lines.join("\n")).toMatch(
      /\nw: warm target [1-9]\d* idle, for \d+\.\d\d new sessions\/s × boot \d+ ms/,
    );
  }, 120_000);
});
