// The examples on `network: egress` (issue 18): a real Chromium driven through
// examples/playwright, its pool contained the default way (`user: auto`, `network` unset),
// loads a page from the fake outside world by name and cannot load one from a private range;
// examples/python-repl (network: egress in its own herd.yaml) fetches from the outside world and
// cannot connect to the host. Each daemon runs in a mount namespace whose /etc/resolv.conf names
// the outside world's DNS server.

import { rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { networkInterfaces } from "node:os";
import { chromium } from "playwright";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createHerdClient } from "../../sdk/ts/src/index.ts";
import {
  herdWithResolvConf,
  type OutsideWorld,
  reachableFromHost,
  startOutsideWorld,
} from "../egress/outside-world.ts";
import {
  CHROMIUM_LAUNCH,
  type Daemon,
  type LeakTag,
  newLeakTag,
  startDaemon,
} from "../helpers/index.ts";
import { exampleConfig, stopContained, type UidRange, uidRangeKey } from "./isolation-harness.ts";

const UID_RANGE: UidRange = [232_000, 232_999];
let world: OutsideWorld;
let resolvFile: string;
let hostListener: Server;
let hostPort: number;
let leak: LeakTag;
let daemon: Daemon | undefined;

beforeAll(async () => {
  world = await startOutsideWorld();
  resolvFile = `/tmp/herd-egress-examples-resolv-${world.netns}`;
  writeFileSync(resolvFile, `nameserver ${world.internet}\n`);
  hostListener = createServer((s) => {
    s.on("error", () => {});
    s.end("host\n");
  });
  await new Promise<void>((r) => hostListener.listen(0, "0.0.0.0", r));
  hostPort = (hostListener.address() as { port: number }).port;
}, 60_000);

afterAll(() => {
  hostListener?.close();
  world?.close();
  rmSync(resolvFile, { force: true });
});

afterEach(async () => {
  const exit = await stopContained(daemon, leak.tag, UID_RANGE);
  daemon = undefined;
  expect(exit).toEqual({ code: 0, signal: null });
}, 60_000);

/** An example's herd.yaml, its pools' isolation given by `isolation` (over the file's own). */
async function start(example: string, isolation: Record<string, unknown>): Promise<Daemon> {
  leak = newLeakTag();
  daemon = await startDaemon({
    command: herdWithResolvConf(resolvFile),
    config: exampleConfig(example, isolation, leak),
    env: leak.env,
    readyTimeoutMs: 120_000,
  });
  return daemon;
}

const hostAddresses = () =>
  Object.values(networkInterfaces())
    .flat()
    .filter((a) => a?.family === "IPv4" && !a.internal && !a.address.startsWith("10.250."))
    .map((a) => a!.address);

describe("examples on network: egress", () => {
  it("playwright, contained by default: chromium loads the outside world's page, not a private one", async () => {
    const d = await start("playwright", { user: "auto", uid_range: uidRangeKey(UID_RANGE) });
    expect(d.stdout() + d.stderr()).toMatch(/pool browser containment: .*network: egress/);
    const herd = createHerdClient({ baseUrl: d.controlUrl });
    const session = await herd.acquire("browser", { waitMs: 90_000 });
    const browser = await chromium.connect(`${session.proxyUrl.replace(/^http/, "ws")}/`, {
      headers: {
        ...session.headers,
        "x-playwright-launch-options": JSON.stringify(CHROMIUM_LAUNCH),
      },
      timeout: 90_000,
    });
    try {
      const tab = await (await browser.newContext()).newPage();
      await tab.goto(`http://${world.name}/hello`, { timeout: 60_000 });
      expect(await tab.textContent("#where")).toBe(`outside ${world.internet}`);
      expect(await reachableFromHost(world.rfc1918)).toBe(true);
      await expect(tab.goto(`http://${world.rfc1918}/hello`, { timeout: 60_000 })).rejects.toThrow(
        /net::ERR_/,
      );
    } finally {
      await browser.close();
    }
  }, 240_000);

  it("python-repl: fetches from the outside world, cannot connect to the host", async () => {
    const d = await start("python-repl", { uid_range: uidRangeKey(UID_RANGE) });
    const exec = async (code: string) => {
      const res = await fetch(`${d.dataUrl}/exec`, {
        method: "POST",
        headers: { "X-Session-ID": "py", "content-type": "text/plain" },
        body: code,
      });
      expect(res.status).toBe(200);
      return (await res.json()) as { ok: boolean; result: string | null; error: string | null };
    };
    const got = await exec(
      `import urllib.request\nurllib.request.urlopen("http://${world.name}/hello", timeout=30).read().decode()`,
    );
    expect(got.result).toContain(`outside ${world.internet}`);
    await exec(
      "import socket\n" +
        "def reach(host, port):\n" +
        "    try:\n" +
        "        socket.create_connection((host, port), timeout=5).close()\n" +
        "        return 'open'\n" +
        "    except OSError as e:\n" +
        "        return type(e).__name__\n" +
        "row = [l.split() for l in open('/proc/net/route') if l.split()[1] == '00000000'][0]\n" +
        "gateway = '.'.join(str(int(row[2][i:i + 2], 16)) for i in (6, 4, 2, 0))",
    );
    const gateway = (await exec("gateway")).result!.replace(/'/g, "");
    for (const addr of [gateway, ...hostAddresses()]) {
      expect(await reachableFromHost(addr, hostPort), `${addr} from the host`).toBe(true);
      expect((await exec(`reach(${JSON.stringify(addr)}, ${hostPort})`)).result, addr).not.toBe(
        "'open'",
      );
    }
  }, 180_000);
});
