import { type ChildProcess, spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, it } from "vitest";
import {
  descendants,
  expectNoLeaks,
  killAllWithTag,
  newLeakTag,
  pidAlive,
  pidsWithTag,
  procStat,
  waitForPidsGone,
} from "./processes.ts";

const tags: string[] = [];
function tag() {
  const t = newLeakTag();
  tags.push(t.tag);
  return t;
}
afterEach(() => {
  for (const t of tags.splice(0)) killAllWithTag(t);
});

function spawnTagged(env: Record<string, string>, cmd: string, args: string[]): ChildProcess {
  return spawn(cmd, args, { env: { ...process.env, ...env }, stdio: "ignore" });
}

async function until(cond: () => boolean, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await sleep(10);
  }
}

describe("leak tags", () => {
  it("gives each test a distinct tag carried in env", () => {
    const a = newLeakTag();
    const b = newLeakTag();
    expect(a.tag).not.toBe(b.tag);
    expect(a.env.HERD_LEAK_TAG).toBe(a.tag);
  });

  it("finds a tagged process, reports it as a leak, and kills it", async () => {
    const t = tag();
    const child = spawnTagged(t.env, "sleep", ["1000"]);
    await until(() => pidsWithTag(t.tag).includes(child.pid!));
    expect(pidAlive(child.pid!)).toBe(true);

    const err = await expectNoLeaks(t.tag, { withinMs: 200 }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toContain(`pid ${child.pid}`);
    expect((err as Error).message).toContain("sleep 1000");

    // The checker cleaned up after reporting.
    expect(await waitForPidsGone([child.pid!], 2000)).toEqual([]);
    expect(pidsWithTag(t.tag)).toEqual([]);
  });

  it("finds grandchildren that left the session (setsid + double fork)", async () => {
    const t = tag();
    // sh forks a setsid'd sh that backgrounds sleep and exits: sleep is reparented away
    // from us and lives in a new session; only the tag still ties it to this test.
    const sh = spawnTagged(t.env, "sh", ["-c", "setsid sh -c 'sleep 1000 & echo $!' >/dev/null"]);
    await new Promise((r) => sh.once("exit", r));
    await until(() => pidsWithTag(t.tag).length === 1);
    const [orphan] = pidsWithTag(t.tag);
    expect(procStat(orphan!)?.sid).not.toBe(procStat(process.pid)?.sid);
    await expect(expectNoLeaks(t.tag, { withinMs: 100 })).rejects.toThrow(/leaked/);
    expect(await waitForPidsGone([orphan!], 2000)).toEqual([]);
  });

  it("passes once tagged processes exit within the window", async () => {
    const t = tag();
    const child = spawnTagged(t.env, "sleep", ["0.3"]);
    await until(() => pidsWithTag(t.tag).includes(child.pid!));
    await expectNoLeaks(t.tag, { withinMs: 3000 });
  });

  it("ignores zombies and untagged processes", async () => {
    const t = tag();
    const other = tag();
    // `sleep 0` becomes a child of the exec'd `sleep 1000`, which never reaps it: a zombie.
    const parent = spawnTagged(t.env, "sh", ["-c", "sleep 0 & exec sleep 1000"]);
    const zombieChild = () =>
      readdirSync("/proc")
        .map(Number)
        .filter((p) => p > 0)
        .find((p) => procStat(p)?.ppid === parent.pid && procStat(p)?.state === "Z");
    await until(() => zombieChild() !== undefined && procStat(parent.pid!)?.comm === "sleep");
    expect(pidAlive(zombieChild()!)).toBe(false);
    expect(descendants(parent.pid!)).toEqual([]);
    expect(pidsWithTag(t.tag)).toEqual([parent.pid]);
    expect(pidsWithTag(other.tag)).toEqual([]);
    parent.kill("SIGKILL");
    await expectNoLeaks(t.tag);
  });

  it("walks descendants through ppid links", async () => {
    const t = tag();
    const sh = spawnTagged(t.env, "sh", ["-c", "sleep 1000 & sleep 1000 & wait"]);
    await until(() => descendants(sh.pid!).length === 2);
    for (const pid of descendants(sh.pid!)) expect(procStat(pid)?.ppid).toBe(sh.pid);
    killAllWithTag(t.tag);
    await expectNoLeaks(t.tag);
  });
});
