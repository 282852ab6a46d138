// The examples still work with their workers contained: `isolation: {user: auto, network:
// private}` added to examples/playwright and examples/llm-stream (python-repl turns it on in its
// own herd.yaml). With a private network a browser reaches nothing outside its namespace, so the
// page is given inline rather than served from the host.

import { chromium } from "playwright";
import { afterEach, describe, expect, it } from "vitest";
import { createHerdClient } from "../../sdk/ts/src/index.ts";
import {
  CHROMIUM_LAUNCH,
  type Daemon,
  descendants,
  type LeakTag,
  newLeakTag,
  startDaemon,
  waitForPidsGone,
} from "../helpers/index.ts";
import {
  exampleConfig,
  processesInUidRange,
  stopContained,
  type UidRange,
  uidRangeKey,
} from "./isolation-harness.ts";

const UID_RANGE: UidRange = [240_000, 240_999];
const CONTAINED = { user: "auto", uid_range: uidRangeKey(UID_RANGE), network: "private" };

let leak: LeakTag;
let daemon: Daemon | undefined;

async function start(example: string): Promise<Daemon> {
  leak = newLeakTag();
  daemon = await startDaemon({
    config: exampleConfig(example, CONTAINED, leak),
    env: leak.env,
    readyTimeoutMs: 120_000,
  });
  return daemon;
}

afterEach(async () => {
  const exit = await stopContained(daemon, leak.tag, UID_RANGE);
  daemon = undefined;
  expect(exit).toEqual({ code: 0, signal: null });
}, 60_000);

describe("examples with isolation: {user: auto, network: private}", () => {
  it("playwright: drives chromium in a contained worker", async () => {
    const d = await start("playwright");
    const herd = createHerdClient({ baseUrl: d.controlUrl });
    const session = await herd.acquire("browser", { waitMs: 90_000 });
    const browser = await chromium.connect(`${session.proxyUrl.replace(/^http/, "ws")}/`, {
      headers: {
        ...session.headers,
        "x-playwright-launch-options": JSON.stringify(CHROMIUM_LAUNCH),
      },
      timeout: 90_000,
    });
    const tab = await (await browser.newContext()).newPage();
    await tab.setContent("<title>inside the sandbox</title>");
    expect(await tab.title()).toBe("inside the sandbox");
    const tree = [session.workerPid, ...descendants(session.workerPid)];
    const contained = processesInUidRange(UID_RANGE).filter((pid) => tree.includes(pid));
    expect(contained.length, "run-server and chromium run under the worker's uid").toBeGreaterThan(
      1,
    );
    await browser.close();
    expect(await waitForPidsGone(tree, 10_000)).toEqual([]);
  }, 240_000);

  it("llm-stream: streams a chat turn per session from contained workers", async () => {
    const d = await start("llm-stream");
    const turn = async (session: string) => {
      const res = await fetch(`${d.dataUrl}/api/chat`, {
        method: "POST",
        headers: { "X-Session-ID": session, "content-type": "application/json" },
        body: JSON.stringify({ model: "herd-fake", messages: [{ role: "user", content: "hi" }] }),
      });
      expect(res.status).toBe(200);
      const lines = (await res.text()).split("\n").filter(Boolean);
      return JSON.parse(lines.at(-1)!) as { done: boolean };
    };
    const [a, b] = await Promise.all([turn("ann"), turn("ben")]);
    expect(a.done && b.done).toBe(true);
    const herd = createHerdClient({ baseUrl: d.controlUrl });
    const pids = (await herd.sessions()).map((s) => s.workerPid);
    const inRange = processesInUidRange(UID_RANGE);
    for (const pid of pids) {
      expect([pid, ...descendants(pid)].some((p) => inRange.includes(p))).toBe(true);
    }
  }, 120_000);
});
