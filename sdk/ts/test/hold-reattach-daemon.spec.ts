// The SDK's re-attach against the real control plane and pool (not the stub): a hold whose
// stream is cut through a TCP relay re-attaches with attach_only to the same session and
// worker process, within the pool's disconnect_grace; a holder that is really gone (SIGKILLed)
// still has its session and worker tree ended once the window passes.

import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { afterEach, describe, expect, it } from "vitest";
import { type Harness, startHarness } from "../../../test/helpers/control-plane-harness.ts";
import { pidAlive, waitForPidsGone } from "../../../test/helpers/processes.ts";
import { createHerdClient } from "../src/index.ts";
import { startTcpRelay, type TcpRelay } from "./tcp-relay.ts";

const graceMs = 1_000;
const windowMs = 3_000;
let h: Harness | undefined;
let relay: TcpRelay | undefined;
afterEach(async () => {
  await relay?.close();
  await h?.close();
  relay = undefined;
  h = undefined;
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(cond: () => boolean, what: string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe("HerdClient.hold against the daemon's reconnect window", () => {
  it("re-attaches after a cut to the same session and worker process", async () => {
    h = await startHarness([
      { reuse: false, heartbeatGraceMs: graceMs, disconnectGraceMs: windowMs },
    ]);
    relay = await startTcpRelay(h.cp.url);
    const held = await createHerdClient({ baseUrl: relay.url }).hold("w");
    const pid = held.workerPid;
    relay.cut();
    await until(() => held.reattaches === 1, "the hold to re-attach");
    expect(held.signal.aborted).toBe(false);
    expect(h.herd.lookup(held.id)?.workerPid).toBe(pid);
    await sleep(graceMs * 3); // renewals reach the new hold
    expect(held.signal.aborted).toBe(false);
    expect(pidAlive(pid)).toBe(true);
    await held.release();
    expect(await waitForPidsGone([pid], 5_000)).toEqual([]);
  });

  it("a SIGKILLed holder's session ends once the window passes", async () => {
    h = await startHarness([
      { reuse: false, heartbeatGraceMs: graceMs, disconnectGraceMs: windowMs },
    ]);
    const child = spawn(
      process.execPath,
      ["--import", "tsx", new URL("./hold-child.ts", import.meta.url).pathname, h.cp.url, "w"],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    try {
      const id = await new Promise<string>((resolve, reject) => {
        createInterface({ input: child.stdout! }).on(
          "line",
          (l) => l.startsWith("HELD ") && resolve(l.slice(5)),
        );
        child.once("exit", (code) => reject(new Error(`hold-child exited early (${code})`)));
      });
      const pid = h.herd.lookup(id)!.workerPid;
      const killedAt = Date.now();
      child.kill("SIGKILL");
      await until(() => h!.herd.lookup(id) === undefined, "the window to end the session");
      expect(Date.now() - killedAt).toBeGreaterThanOrEqual(windowMs - 500);
      expect(await waitForPidsGone([pid], 5_000)).toEqual([]);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    }
  });
});
