// idle_cpu with real workers: a session whose worker computes with no traffic through herd
// survives its ttl with idle_cpu, expires without it, and with it expires once the computing
// stops. The worker is told to compute directly (not through herd: herd sees no traffic).
import { afterEach, describe, expect, it } from "vitest";
import { eventually, getJson, herdFixture, recordEvents } from "../../test/helpers/herd.ts";
import { CpuActivity } from "./cpu-activity.ts";
import { cgroupCpuUs, processesCpuUs } from "./cpu-usage.ts";
import { resolvePoolOptions } from "./options.ts";
import type { PoolWorker } from "./pool-worker.ts";

const fx = herdFixture();
afterEach(() => fx.cleanup());

const TTL_MS = 2_000;
/** Four ttls of computing: enough that surviving it is no accident of timer lag. */
const SPIN_MS = 4 * TTL_MS;

async function spin(address: string): Promise<number> {
  const { until } = await getJson<{ until: number }>(address, `/control/spin?ms=${SPIN_MS}`, {
    method: "POST",
  });
  return until;
}

describe("idle_cpu", () => {
  it("keeps a computing session with no traffic past its ttl, and lets it expire after", async () => {
    // 2 % of one core: at load 20 on 2 cores a spinning process still gets ~10 %.
    const herd = await fx.start({ idleTtlMs: TTL_MS, idleCpu: 0.02 });
    const log = recordEvents(herd);
    const s = await herd.acquire("w", "busy");
    const until = await spin(s.workerAddress);
    await new Promise((r) => setTimeout(r, Math.max(0, until - Date.now())));
    // The whole spin lasted four ttls with no traffic: the session is still there.
    expect(herd.lookup("busy")?.workerPid).toBe(s.workerPid);
    // Computing stopped: now it idles out like any other.
    await eventually(
      "the session to expire once its worker is quiet",
      () => log.events.find((e) => e.type === "session_expired" && e.sessionId === "busy"),
      60_000,
    );
    const expired = log.events.find((e) => e.type === "session_expired")!;
    expect(expired.reason).toBe("idle_timeout");
    expect(expired.time.getTime()).toBeGreaterThanOrEqual(until);
    log.stop();
  }, 120_000);

  it("without idle_cpu the same computing session expires within its spin", async () => {
    const herd = await fx.start({ idleTtlMs: TTL_MS });
    const log = recordEvents(herd);
    const s = await herd.acquire("w", "busy");
    const until = await spin(s.workerAddress);
    const expired = await eventually(
      "the session to expire",
      () => log.events.find((e) => e.type === "session_expired" && e.sessionId === "busy"),
      60_000,
    );
    expect(expired.reason).toBe("idle_timeout");
    expect(expired.time.getTime()).toBeLessThan(until);
    log.stop();
  }, 120_000);

  it("reads a worker's CPU time from its cgroup or /proc", async () => {
    const herd = await fx.start({});
    const s = await herd.acquire("w", "cpu");
    const before = processesCpuUs([s.workerPid]);
    const until = await spin(s.workerAddress);
    // Some CPU time shows within the spin (polled: the host may be busy).
    await eventually("CPU time to grow", () => processesCpuUs([s.workerPid]) > before, 60_000);
    expect(Date.now()).toBeLessThan(until + 60_000);
    expect(cgroupCpuUs("/nonexistent-herd-cgroup")).toBeUndefined();
    expect(processesCpuUs([2 ** 22 + 1])).toBe(0); // no such pid: counted as nothing
  }, 120_000);
});

describe("CpuActivity", () => {
  const worker = (cpu: { us: number }) => ({ cpuUsageUs: () => cpu.us }) as unknown as PoolWorker;

  it("touches a connection-less session whose worker used more than idle_cpu", () => {
    const busy = { us: 0 };
    const quiet = { us: 0 };
    const touched: string[] = [];
    const sessions = [
      { id: "busy", worker: worker(busy), leases: 0 },
      { id: "quiet", worker: worker(quiet), leases: 0 },
      { id: "connected", worker: worker(busy), leases: 1 },
    ];
    const a = new CpuActivity(
      resolvePoolOptions({ name: "p", command: ["x"], idleCpu: 0.1, idleTtlMs: 60_000 }),
      { sessions: () => sessions, touch: (id) => touched.push(id) },
    );
    a.sample(0); // the first reading of each worker: nothing to compare yet
    expect(touched).toEqual([]);
    busy.us += 500_000; // half a CPU over the second that follows
    quiet.us += 50_000; // 5 %: below the threshold
    a.sample(1_000);
    expect(touched).toEqual(["busy"]);
    a.close();
  });
});
