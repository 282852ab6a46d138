import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { afterEach, describe, expect, it } from "vitest";
import { expectNoLeaks, newLeakTag, pidAlive, pidsWithTag } from "../../test/helpers/processes.ts";

const CHILD = new URL("../../test/fixtures/herd-child.ts", import.meta.url).pathname;
const tags: string[] = [];
afterEach(async () => {
  for (const tag of tags.splice(0)) await expectNoLeaks(tag);
});

async function runAndKill(isolation: "cgroup" | "pidns") {
  const { tag, env } = newLeakTag();
  tags.push(tag);
  const child = spawn(process.execPath, ["--import", "tsx", CHILD, "10", isolation], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const first = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once("line", resolve);
    child.once("exit", (code) => reject(new Error(`herd child exited early (${code})`)));
  });
  const { pids } = JSON.parse(first) as { pids: number[] };
  expect(pids.length).toBe(30);
  // Inside a PID namespace the worker reports namespace-local pids; the tag scan sees them all.
  if (isolation === "cgroup") expect(pids.every(pidAlive)).toBe(true);
  // Every worker, grandchild and the daemon itself carry the tag.
  expect(pidsWithTag(tag).length).toBeGreaterThanOrEqual(31);
  child.kill("SIGKILL");
  await new Promise((r) => setTimeout(r, 1_000));
  return {
    survivors: isolation === "cgroup" ? pids.filter(pidAlive) : [],
    tagged: pidsWithTag(tag),
  };
}

describe("when the daemon is SIGKILLed", () => {
  it("takes all 10 worker trees, setsid grandchildren included, with it (cgroup reaper)", async () => {
    const { survivors, tagged } = await runAndKill("cgroup");
    expect(survivors).toEqual([]);
    expect(tagged).toEqual([]);
  });

  it("does the same with PID namespaces", async () => {
    const { survivors, tagged } = await runAndKill("pidns");
    expect(survivors).toEqual([]);
    expect(tagged).toEqual([]);
  });
});
