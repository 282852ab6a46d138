// The fencing watchdog with real processes: a listed process group dies once the deadline
// passes without a renewal; renewals keep it alive; a clean stop kills nothing.
import { spawn } from "node:child_process";
import { afterEach, describe, expect, it } from "vitest";
import { eventually } from "../../test/helpers/herd.ts";
import { pidAlive } from "../../test/helpers/processes.ts";
import { FenceWatchdog } from "./fence-watchdog.ts";

const started: number[] = [];
const dogs: FenceWatchdog[] = [];

function group(): number {
  const child = spawn("sleep", ["60"], { detached: true, stdio: "ignore" });
  child.unref();
  started.push(child.pid!);
  return child.pid!;
}

afterEach(async () => {
  for (const d of dogs.splice(0)) d.stop();
  const pids = started.splice(0);
  for (const pid of pids) {
    try {
      process.kill(-pid, "SIGKILL");
    } catch {}
  }
  for (const pid of pids) await eventually(`pid ${pid} gone`, () => !pidAlive(pid));
});

describe("FenceWatchdog", () => {
  it("kills a listed group when the deadline passes unrenewed, not before", async () => {
    const dog = new FenceWatchdog();
    dogs.push(dog);
    const pid = group();
    dog.add(pid);
    // Renewed for a while: alive.
    for (let i = 0; i < 5; i++) {
      dog.until(Date.now() + 2_000);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(pidAlive(pid)).toBe(true);
    dog.until(Date.now() + 100);
    await eventually("the group is killed", () => !pidAlive(pid));
  });

  it("a removed group, and a clean stop, kill nothing", async () => {
    const dog = new FenceWatchdog();
    const [kept, removed] = [group(), group()];
    dog.add(removed);
    dog.remove(removed);
    dog.add(kept);
    dog.until(Date.now() + 60_000);
    dog.stop();
    await eventually("the watchdog exits", () => dog.pid !== undefined && !pidAlive(dog.pid));
    expect(pidAlive(kept)).toBe(true);
    expect(pidAlive(removed)).toBe(true);
  });
});
