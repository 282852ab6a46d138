// Workers start with a clean environment, so the leak tag reaches them only because each test
// harness hands it over (pool `env` or `env_passthrough`). Were that lost, every expectNoLeaks
// would pass without looking at a single worker; these tests fail first.
import { afterEach, describe, expect, it } from "vitest";
import { startStack, whoami } from "../dataplane/stack.ts";
import { startHarness } from "./control-plane-harness.ts";
import { type Daemon, startDaemon } from "./daemon.ts";
import { herdFixture } from "./herd.ts";
import {
  expectNoLeaks,
  killAllWithTag,
  newLeakTag,
  pidsRunning,
  pidsWithTag,
} from "./processes.ts";
import { WORKER_FIXTURE } from "./worker.ts";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe("the leak tag reaches workers through", () => {
  it("startDaemon (a herd serve config without env_passthrough)", async () => {
    const leak = newLeakTag();
    let daemon: Daemon | undefined;
    cleanups.push(async () => {
      await daemon?.stop();
      try {
        await expectNoLeaks(leak.tag);
      } finally {
        killAllWithTag(leak.tag);
      }
    });
    daemon = await startDaemon({
      config: { workers: { w: { cmd: [process.execPath, WORKER_FIXTURE], min: 0 } } },
      env: leak.env,
    });
    await whoami(daemon.dataUrl, { headers: { "X-Session-ID": "tagged" } });
    // The worker is contained (its own pid is renumbered): found by its argv on the host.
    expect(pidsRunning(leak.tag, WORKER_FIXTURE)).toHaveLength(1);
  });

  it("startStack (an in-process herd behind the data plane)", async () => {
    const s = await startStack();
    cleanups.push(() => s.stop());
    const { pid } = await whoami(s.url, { headers: { "X-Session-ID": "tagged" } });
    expect(pidsWithTag(s.tag)).toContain(pid);
  });

  it("herdFixture (the pool engine alone)", async () => {
    const f = herdFixture();
    cleanups.push(() => f.cleanup());
    const herd = await f.start();
    const session = await herd.acquire("w", "tagged");
    expect(pidsWithTag(f.tag)).toContain(session.workerPid);
  });

  it("startHarness (the control plane's specs)", async () => {
    const h = await startHarness();
    cleanups.push(() => h.close());
    const session = await h.herd.acquire("w", "tagged");
    expect(pidsWithTag(h.tag)).toContain(session.workerPid);
  });
});
