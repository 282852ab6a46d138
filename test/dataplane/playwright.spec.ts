// The seeds' client flow end to end: herd runs `playwright run-server` workers, a Playwright
// client connects through the data plane with X-Session-ID, drives Debian's chromium (no
// browser download; scripts/setup-chromium.sh installs it) and the session's whole tree —
// run-server and every chromium process — dies with the session.
//
// run-server filters executablePath/args out of client launch options unless started with
// --unsafe, so the pool passes it; otherwise the command is the seed's.
import { existsSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { type Browser, chromium } from "playwright";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  CHROMIUM,
  CHROMIUM_LAUNCH,
  cmdline,
  descendants,
  REPO_ROOT,
  waitForPidsGone,
} from "../helpers/index.ts";
import { stackTracker, startStack } from "./stack.ts";

const { track, stopAll } = stackTracker();
afterEach(stopAll);

let page: Server;
let pageUrl: string;
beforeAll(async () => {
  // GET /set sets a cookie; every other path serves the page without one.
  page = createServer((req, res) =>
    res
      .writeHead(200, {
        "content-type": "text/html",
        ...(req.url === "/set" ? { "set-cookie": "seen=yes; Path=/" } : {}),
      })
      .end("<title>local</title>"),
  );
  await new Promise<void>((ok) => page.listen(0, "127.0.0.1", ok));
  pageUrl = `http://127.0.0.1:${(page.address() as { port: number }).port}/`;
});
afterAll(() => new Promise<void>((ok) => page.close(() => ok())));

function browserPool(extra: { releaseOnDisconnect?: boolean; reuse?: boolean } = {}) {
  return {
    command: ["npx", "playwright", "run-server", "--port", "{{.Port}}", "--unsafe"],
    cwd: REPO_ROOT,
    env: { PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: "1" },
    healthPath: "/",
    startTimeoutMs: 90_000,
    max: 3,
    ...extra,
  };
}

function connect(url: string, id: string): Promise<Browser> {
  return chromium.connect(`${url.replace("http:", "ws:")}/`, {
    headers: { "X-Session-ID": id, "x-playwright-launch-options": JSON.stringify(CHROMIUM_LAUNCH) },
    timeout: 60_000,
  });
}

/** Debian's /usr/bin/chromium is a wrapper script that execs /usr/lib/chromium/chromium. */
const isChromium = (pid: number) => cmdline(pid).includes("/chromium");

function chromiumPids(workerPid: number): number[] {
  return descendants(workerPid).filter(isChromium);
}

describe("playwright through the data plane", () => {
  it("needs Debian's chromium (scripts/setup-chromium.sh)", () => {
    expect(existsSync(CHROMIUM), `${CHROMIUM} missing: run scripts/setup-chromium.sh`).toBe(true);
  });

  it("pins a Playwright session to one run-server worker across a reconnect, isolated from others", async () => {
    const s = track(await startStack([browserPool()]));
    const first = await connect(s.url, "pw-a");
    const worker = s.herd.lookup("pw-a")!.workerPid;
    expect(chromiumPids(worker).length).toBeGreaterThan(0); // the browser runs under the worker
    const ctx = await first.newContext();
    const tab = await ctx.newPage();
    await tab.goto(`${pageUrl}set`);
    expect((await ctx.cookies()).map((c) => `${c.name}=${c.value}`)).toEqual(["seen=yes"]);
    await first.close();

    // Within disconnect_grace the same id reaches the same worker.
    const again = await connect(s.url, "pw-a");
    expect(s.herd.lookup("pw-a")!.workerPid).toBe(worker);
    expect(chromiumPids(worker).length).toBeGreaterThan(0);

    // While pw-a is live, another id gets a worker of its own.
    const other = await connect(s.url, "pw-b");
    expect(s.herd.lookup("pw-b")!.workerPid).not.toBe(worker);
    const otherCtx = await other.newContext();
    await (await otherCtx.newPage()).goto(pageUrl);
    expect(await otherCtx.cookies()).toEqual([]);
    await other.close();
    await again.close();
  }, 180_000);

  it("with release_on_disconnect and reuse:false, closing the client kills run-server and chromium", async () => {
    const s = track(await startStack([browserPool({ releaseOnDisconnect: true, reuse: false })]));
    const browser = await connect(s.url, "pw-dms");
    const worker = s.herd.lookup("pw-dms")!.workerPid;
    const tree = [worker, ...descendants(worker)];
    expect(tree.filter(isChromium).length).toBeGreaterThan(0);
    const tab = await (await browser.newContext()).newPage();
    await tab.goto(pageUrl);
    await browser.close();
    expect(await waitForPidsGone(tree, 5000)).toEqual([]);
    expect(s.herd.lookup("pw-dms")).toBeUndefined();
  }, 180_000);
});
