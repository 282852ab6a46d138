import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { eventually, herdFixture } from "../../test/helpers/herd.ts";
import { generationOf, pidAlive } from "../../test/helpers/processes.ts";
import { silentLogger } from "../core/index.ts";
import { ownIdentity } from "./cgroup-owner.ts";
import { CgroupTree } from "./cgroups.ts";
import { hostCapabilities } from "./host-capabilities.ts";
import { procStat } from "./proc-stat.ts";

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
    // The generation's directory is named after its reaper (reaper.ts): read it off a worker.
    const generation = generationOf(plain.workerPid);
    const dir = (base: string, workerId: string) => join(base, generation, workerId);
    expect(existsSync(dir(cpu!, plain.workerId))).toBe(false);
    expect(existsSync(dir(cgroups.v2!, plain.workerId))).toBe(true);
    const cpuProcs = readFileSync(join(dir(cpu!, capped.workerId), "cgroup.procs"), "utf8");
    expect(cpuProcs.split("\n")).toContain(String(capped.workerPid));
    expect(readFileSync(join(dir(cpu!, capped.workerId), "cpu.cfs_quota_us"), "utf8").trim()).toBe(
      "50000",
    );
  });
});

describe("the stale-cgroup sweep", () => {
  it("removes only the cgroups of provably dead daemons, never one it cannot see", async ({
    skip,
  }) => {
    const v2 = hostCapabilities().cgroups.v2;
    if (!v2) skip("needs a writable cgroup v2 hierarchy");
    // A private parent, so that daemons of concurrent test files (which sweep the real top
    // level) cannot race this test's fake daemons.
    const base = join(v2!, `sweep-test-${process.pid}`);
    mkdirSync(base);
    const self = ownIdentity();
    const children: ChildProcess[] = [];
    const made: string[] = [];
    /** A daemon cgroup named `name`, optionally holding a live `sleep` (a worker of it). */
    const daemonCgroup = async (name: string, withWorker: boolean) => {
      const dir = join(base, name);
      mkdirSync(dir);
      made.push(dir);
      if (!withWorker) return { dir };
      const child = spawn("sleep", ["300"], { stdio: "ignore" });
      children.push(child);
      await new Promise((r) => child.once("spawn", r));
      writeFileSync(join(dir, "cgroup.procs"), String(child.pid));
      return { dir, worker: child.pid! };
    };
    const dead = spawn("true");
    await new Promise((r) => dead.once("exit", r));
    const deadPid = dead.pid!;
    const live = spawn("sleep", ["300"], { stdio: "ignore" });
    children.push(live);
    await new Promise((r) => live.once("spawn", r));
    const liveStart = procStat(live.pid!)!.startTime;
    try {
      // Same PID namespace, pid gone: provably dead.
      const gone = await daemonCgroup(`herd-${self.pidns}-${deadPid}-123`, true);
      // Same namespace, pid alive but started at another time: the pid was reused.
      const reused = await daemonCgroup(`herd-${self.pidns}-${live.pid}-${liveStart + 1}`, false);
      // Same namespace, alive: keep.
      const alive = await daemonCgroup(`herd-${self.pidns}-${live.pid}-${liveStart}`, false);
      // Another PID namespace (another container): its pid means nothing here; keep.
      const foreign = await daemonCgroup(`herd-1-${deadPid}-123`, true);
      // The pre-ownership name of another container's daemon, with a worker in it: it was
      // killed by the old sweep; now only an empty one is removed.
      const legacy = await daemonCgroup(`herd-${deadPid}`, true);
      const legacyEmpty = await daemonCgroup(`herd-${deadPid + 1_000_000}`, false);

      const mounts = { v2: base, v2Controllers: new Set<string>(), v1: new Map<string, string>() };
      const tree = new CgroupTree(mounts, silentLogger);
      try {
        await eventually("the dead daemon's worker killed", () => !pidAlive(gone.worker!));
        await eventually("the dead daemon's cgroup removed", () => !existsSync(gone.dir));
        await eventually("the reused pid's cgroup removed", () => !existsSync(reused.dir));
        await eventually("the empty legacy cgroup removed", () => !existsSync(legacyEmpty.dir));
        expect({
          alive: existsSync(alive.dir),
          foreign: existsSync(foreign.dir),
          foreignWorker: pidAlive(foreign.worker!),
          legacy: existsSync(legacy.dir),
          legacyWorker: pidAlive(legacy.worker!),
        }).toEqual({
          alive: true,
          foreign: true,
          foreignWorker: true,
          legacy: true,
          legacyWorker: true,
        });
      } finally {
        await tree.destroy();
      }
    } finally {
      for (const child of children) child.kill("SIGKILL");
      await eventually("test processes gone", () => children.every((c) => !pidAlive(c.pid!)));
      for (const dir of [...made, base]) {
        await eventually(`${dir} removed`, () => {
          try {
            rmdirSync(dir);
          } catch {}
          return !existsSync(dir);
        });
      }
    }
  });
});
