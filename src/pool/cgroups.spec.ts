import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { herdFixture } from "../../test/helpers/herd.ts";
import { hostCapabilities } from "./host-capabilities.ts";

const fx = herdFixture();
afterEach(() => fx.cleanup());

describe("per-worker cgroups", () => {
  it("joins a v1 controller only for a limit the pool sets, and v2 always", async ({ skip }) => {
    const { cgroups } = hostCapabilities();
    const cpu = cgroups.v1.get("cpu");
    if (!cpu || !cgroups.v2) skip("needs a writable v1 cpu hierarchy and cgroup v2 (hybrid host)");
    const herd = await fx.start(
      { name: "plain", max: 1 },
      { name: "capped", max: 1, limits: { cpus: 0.5 } },
    );
    const plain = await herd.acquire("plain", "p");
    const capped = await herd.acquire("capped", "c");
    const dir = (base: string, workerId: string) => join(base, `herd-${process.pid}`, workerId);
    expect(existsSync(dir(cpu!, plain.workerId))).toBe(false);
    expect(existsSync(dir(cgroups.v2!, plain.workerId))).toBe(true);
    const cpuProcs = readFileSync(join(dir(cpu!, capped.workerId), "cgroup.procs"), "utf8");
    expect(cpuProcs.split("\n")).toContain(String(capped.workerPid));
    expect(readFileSync(join(dir(cpu!, capped.workerId), "cpu.cfs_quota_us"), "utf8").trim()).toBe(
      "50000",
    );
  });
});
