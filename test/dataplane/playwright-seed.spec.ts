// The landing page's promise, tested as a new user meets it: README's seed config (run-server,
// min 1, max 5, ttl 15m, reuse false, health_path "/"), plus the one change this host needs
// (README says which and why), and the Python Playwright client connecting with X-Session-ID.
// With no extra keys, a client that disconnects or is SIGKILLed takes its run-server tree with
// it once disconnect_grace has passed, so 20 users one after another on max 5 are all served.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { createHerdClient } from "../../sdk/ts/src/index.ts";
import { spawnCaptured } from "../helpers/captured.ts";
import { inlinePage } from "../helpers/chromium.ts";
import { type Daemon, REPO_ROOT, startDaemon } from "../helpers/daemon.ts";
import {
  descendants,
  expectNoLeaks,
  killAllWithTag,
  type LeakTag,
  newLeakTag,
  waitForPidsGone,
} from "../helpers/processes.ts";

const PYTHON = join(REPO_ROOT, ".venv/bin/python");
const CLIENT = new URL("./seed_client.py", import.meta.url).pathname;
/** disconnect_grace's default; the trees must be gone within it plus this margin. */
const GRACE_MS = 2000;
const MARGIN_MS = 3000;

/** README's seed config: the first YAML block of its Configuration section. */
function readmeSeed(): { workers: { browser: { cmd: string[] } & Record<string, unknown> } } {
  const readme = readFileSync(join(REPO_ROOT, "README.md"), "utf8");
  const section = readme.slice(readme.indexOf("## Configuration"));
  const block = /```yaml\n([\s\S]*?)```/.exec(section)![1]!;
  return parse(block);
}

let leak: LeakTag;
let daemon: Daemon | undefined;
// In the page's URL: the worker's browser is contained (network egress) and reaches nothing here.
const pageUrl = inlinePage("seed page");

describe("the landing page's Playwright seed", () => {
  beforeEach(async () => {
    expect(existsSync("/usr/bin/chromium"), "run scripts/setup-chromium.sh").toBe(true);
    const seed = readmeSeed();
    expect(seed.workers.browser).toMatchObject({ min: 1, max: 5, ttl: "15m", reuse: false });
    // The change README names for hosts without Playwright's browsers, and nothing else.
    seed.workers.browser.cmd = [...seed.workers.browser.cmd, "--unsafe"];
    leak = newLeakTag();
    daemon = await startDaemon({ config: seed, env: leak.env, readyTimeoutMs: 120_000 });
  });
  afterEach(async () => {
    await daemon?.stop();
    try {
      await expectNoLeaks(leak.tag, { withinMs: 5000 });
    } finally {
      killAllWithTag(leak.tag);
    }
  });

  const wsUrl = () => `${daemon!.dataUrl.replace(/^http/, "ws")}/`;
  const herd = () => createHerdClient({ baseUrl: daemon!.controlUrl });

  /** Starts the client; resolves with it once `session` has loaded the page. */
  async function client(mode: "close" | "hang", sessions: string[]) {
    const run = spawnCaptured(PYTHON, [CLIENT, wsUrl(), pageUrl, mode, ...sessions], {
      env: leak.env,
      detached: true,
    });
    const deadline = Date.now() + 120_000;
    while (!run.stdout().includes(`"${sessions[0]}"`)) {
      if (run.child.exitCode !== null || Date.now() > deadline) {
        throw new Error(`client failed: ${run.stderr()}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    return run;
  }

  /** The session's run-server and everything under it, now. */
  async function tree(session: string): Promise<number[]> {
    const live = (await herd().sessions()).find((s) => s.sessionId === session);
    expect(live, `session ${session} is live`).toBeDefined();
    return [live!.workerPid, ...descendants(live!.workerPid)];
  }

  it("a client that disconnects takes its run-server tree with it", async () => {
    const run = await client("hang", ["user-42"]);
    const pids = await tree("user-42");
    expect(pids.length).toBeGreaterThan(2); // run-server and chromium
    // Closing the client's socket cleanly is what browser.close() does; SIGTERM lets it.
    const t0 = Date.now();
    process.kill(-run.child.pid!, "SIGTERM");
    expect(await waitForPidsGone(pids, GRACE_MS + MARGIN_MS)).toEqual([]);
    console.log(`seed: disconnect → tree gone in ${Date.now() - t0} ms (grace ${GRACE_MS} ms)`);
    expect((await herd().sessions()).map((s) => s.sessionId)).not.toContain("user-42");
  }, 240_000);

  it("a client killed with SIGKILL mid-session takes its run-server tree with it", async () => {
    const run = await client("hang", ["user-43"]);
    const pids = await tree("user-43");
    const t0 = Date.now();
    process.kill(-run.child.pid!, "SIGKILL"); // python and its Playwright driver
    expect(await waitForPidsGone(pids, GRACE_MS + MARGIN_MS)).toEqual([]);
    console.log(`seed: kill -9 → tree gone in ${Date.now() - t0} ms (grace ${GRACE_MS} ms)`);
  }, 240_000);

  it("20 users one after another on max 5 are all served, none gets a 503", async () => {
    const users = Array.from({ length: 20 }, (_, i) => `user-${i}`);
    const t0 = Date.now();
    const run = await client("close", users);
    const exit = await run.exited;
    expect(exit.code, run.stderr()).toBe(0);
    const served = run
      .stdout()
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { session: string; title: string });
    expect(served.map((s) => s.session)).toEqual(users);
    expect(served.every((s) => s.title === "seed page")).toBe(true);
    console.log(`seed: 20 users served one after another in ${Date.now() - t0} ms`);
  }, 600_000);
});
