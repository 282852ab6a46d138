// examples/playwright through the real daemon, the way a TS client uses it: acquire a session
// on the control plane, connect Playwright to the data plane with the session's headers, drive
// Debian's chromium, disconnect — and the session's run-server and every browser process die.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createHerdClient } from "../../sdk/ts/src/index.ts";
import { runCaptured } from "../../test/helpers/captured.ts";
import { inlinePage } from "../../test/helpers/chromium.ts";
import { type Daemon, REPO_ROOT, startDaemon } from "../../test/helpers/daemon.ts";
import {
  cmdline,
  descendants,
  expectNoLeaks,
  killAllWithTag,
  type LeakTag,
  newLeakTag,
  pidAlive,
  waitForPidsGone,
} from "../../test/helpers/processes.ts";

const CONFIG = new URL("./herd.yaml", import.meta.url).pathname;
const CHROMIUM = "/usr/bin/chromium";
const LAUNCH_OPTIONS = JSON.stringify({
  executablePath: CHROMIUM,
  args: ["--no-sandbox", "--headless", "--disable-gpu", "--no-first-run", "--disable-sync"],
});

let leak: LeakTag;
let daemon: Daemon | undefined;
// In the page's URL: the worker's browser is contained (network egress) and reaches nothing here.
const pageUrl = inlinePage("served locally");

const PYTHON = join(REPO_ROOT, ".venv/bin/python");
const PY_CLIENT = new URL("./client.py", import.meta.url).pathname;

const wsUrl = (httpUrl: string) => `${httpUrl.replace(/^http/, "ws")}/`;

it("needs Debian's chromium (scripts/setup-chromium.sh)", () => {
  expect(existsSync(CHROMIUM), `${CHROMIUM} missing: run scripts/setup-chromium.sh`).toBe(true);
});

it("needs the Python client's packages (examples/playwright/setup.sh)", async () => {
  const ok = await new Promise<boolean>((resolve) =>
    spawn(PYTHON, ["-c", "import herd, playwright"], { stdio: "ignore" })
      .once("error", () => resolve(false))
      .once("exit", (code) => resolve(code === 0)),
  );
  expect(ok, "run examples/playwright/setup.sh").toBe(true);
});

describe("examples/playwright", () => {
  beforeEach(async () => {
    leak = newLeakTag();
    daemon = await startDaemon({ config: CONFIG, env: leak.env, readyTimeoutMs: 120_000 });
  });
  afterEach(async () => {
    const exit = await daemon?.stop();
    try {
      await expectNoLeaks(leak.tag, { withinMs: 5000 });
    } finally {
      killAllWithTag(leak.tag);
    }
    expect(exit, "herd serve shuts down cleanly on SIGTERM").toEqual({ code: 0, signal: null });
  });

  it("drives a browser in the session's own worker and kills its tree on disconnect", async () => {
    const herd = createHerdClient({ baseUrl: daemon!.controlUrl });
    const session = await herd.acquire("browser", { waitMs: 90_000 });
    const browser = await chromium.connect(wsUrl(session.proxyUrl), {
      headers: { ...session.headers, "x-playwright-launch-options": LAUNCH_OPTIONS },
      timeout: 90_000,
    });
    const tab = await (await browser.newContext()).newPage();
    await tab.goto(pageUrl);
    expect(await tab.title()).toBe("served locally");

    const tree = [session.workerPid, ...descendants(session.workerPid)];
    expect(tree.filter((pid) => cmdline(pid).includes("/chromium")).length).toBeGreaterThan(0);

    await browser.close();
    // release_on_disconnect + reuse: false: run-server and every chromium process are gone.
    expect(await waitForPidsGone(tree, 10_000)).toEqual([]);
    expect((await herd.sessions()).map((s) => s.sessionId)).not.toContain(session.id);
  }, 240_000);

  it("refuses data-plane traffic without the session's token, and never creates sessions there", async () => {
    const herd = createHerdClient({ baseUrl: daemon!.controlUrl });
    const session = await herd.acquire("browser", { waitMs: 90_000 });
    const status = async (headers: Record<string, string>) =>
      (await fetch(`${session.proxyUrl}/`, { headers })).status;
    expect(await status({ "X-Session-ID": session.id })).toBe(401);
    expect(await status({ "X-Session-ID": session.id, "X-Herd-Token": "wrong" })).toBe(401);
    // An unknown ID is refused the same way: it is never created, and a prober learns nothing.
    expect(await status({ "X-Session-ID": "made-up", "X-Herd-Token": session.token })).toBe(401);
    await session.release();
  }, 240_000);

  it("serves the Python client the same way", async () => {
    const {
      code,
      stdout: out,
      stderr: err,
    } = await runCaptured(PYTHON, [PY_CLIENT, "--control", daemon!.controlUrl, pageUrl], {
      env: leak.env,
    });
    expect(code, err).toBe(0);
    const result = JSON.parse(out) as { session: string; worker_pid: number; title: string };
    expect(result.title).toBe("served locally");
    // The client is gone and so is its session: the worker (run-server) was killed.
    expect(await waitForPidsGone([result.worker_pid], 10_000)).toEqual([]);
    expect(pidAlive(result.worker_pid)).toBe(false);
    const herd = createHerdClient({ baseUrl: daemon!.controlUrl });
    expect((await herd.sessions()).map((s) => s.sessionId)).not.toContain(result.session);
  }, 240_000);
});
