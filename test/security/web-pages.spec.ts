// Issue 18, attack 4: web pages drive herd. Neither plane checked Host or Origin, so from a
// victim's browser (Debian's Chromium; --host-resolver-rules stands in for DNS):
// - DNS rebinding: a page of evil.test whose name then resolves to 127.0.0.1 is same-origin
//   with the plane on that port. It read ListSessions, tokens included, and a session's pages.
//   (Here evil.test always resolves to 127.0.0.1; the attacker's server answers the page's
//   first load on port P, then goes away and the plane starts on P: the page's later requests
//   reach the plane with `Host: evil.test:P`, as after a rebinding.)
// - A foreign page's no-cors fetch, form post or WebSocket reached a session's worker and
//   created sessions on the data plane (tokens are off on loopback by default).
// Now both planes answer 421 to a Host they do not serve, the control plane 403 to a browser
// request of another origin, and the data plane serves another origin's request only when it
// names its session and carries that session's token itself.
import { createServer, request } from "node:http";
import type { AddressInfo } from "node:net";
import { type Browser, chromium, type Page } from "playwright";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type ControlPlane, startControlPlane } from "../../src/server/index.ts";
import { type Stack, stackTracker, startStack, whoami } from "../dataplane/stack.ts";
import { CHROMIUM_LAUNCH, type LocalPage, serveLocalPage } from "../helpers/index.ts";

const { track, stopAll } = stackTracker();
const planes: ControlPlane[] = [];
const pages: Page[] = [];
const servers: LocalPage[] = [];
let browser: Browser;

beforeAll(async () => {
  browser = await chromium.launch({
    ...CHROMIUM_LAUNCH,
    args: [...CHROMIUM_LAUNCH.args, "--host-resolver-rules=MAP evil.test 127.0.0.1"],
  });
});
afterAll(async () => {
  await browser?.close();
});
afterEach(async () => {
  for (const p of pages.splice(0)) await p.close();
  for (const s of servers.splice(0)) await s.close();
  for (const cp of planes.splice(0)) await cp.close();
  await stopAll();
});

async function planesUp(): Promise<{ s: Stack; cp: ControlPlane }> {
  const s = track(await startStack());
  const cp = await startControlPlane(s.herd, { listen: "127.0.0.1:0", dataPlaneUrl: s.url });
  planes.push(cp);
  return { s, cp };
}

async function newPage(): Promise<Page> {
  const page = await browser.newPage();
  pages.push(page);
  return page;
}

/**
 * A page of evil.test:P loaded from the attacker's server on P, which then gives P to
 * `start` (a plane), as if evil.test had been rebound to the plane's address.
 */
async function reboundPage(start: (port: number) => Promise<unknown>): Promise<Page> {
  const attacker = createServer((_req, res) =>
    res.writeHead(200, { "content-type": "text/html" }).end("<title>rebound</title>"),
  );
  await new Promise<void>((ok) => attacker.listen(0, "127.0.0.1", ok));
  const { port } = attacker.address() as AddressInfo;
  const page = await newPage();
  try {
    await page.goto(`http://evil.test:${port}/`);
  } finally {
    attacker.closeAllConnections();
    await new Promise((ok) => attacker.close(ok));
  }
  await start(port);
  return page;
}

/** A page of another site: evil.test on its own server. */
async function foreignPage(): Promise<Page> {
  const server = await serveLocalPage("attacker");
  servers.push(server);
  const page = await newPage();
  const { port } = new URL(server.url);
  await page.goto(`http://evil.test:${port}/`);
  return page;
}

describe("DNS rebinding", () => {
  it("a rebound page reads neither ListSessions nor its tokens from the control plane", async () => {
    let victim: { token: string } | undefined;
    const page = await reboundPage(async (port) => {
      const s = track(await startStack());
      victim = await s.herd.acquire("p0", "victim");
      const cp = await startControlPlane(s.herd, {
        listen: `127.0.0.1:${port}`,
        dataPlaneUrl: s.url,
      });
      planes.push(cp);
    });
    const got = await page.evaluate(async () => {
      const res = await fetch("/herd.v1.HerdService/ListSessions", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: "{}",
      });
      return { status: res.status, text: await res.text() };
    });
    expect(got.text).not.toContain(victim?.token);
    expect(got.status).toBe(421);
    expect(JSON.parse(got.text)).toMatchObject({ code: "permission_denied" });
    expect(JSON.parse(got.text).message).toContain("control.allowed_hosts");
  });

  it("a rebound page cannot reach a session's worker through the data plane", async () => {
    let pid = 0;
    const page = await reboundPage(async (port) => {
      const s = track(await startStack([{}], { listen: `127.0.0.1:${port}` }));
      pid = (await whoami(s.url, { headers: { "X-Session-ID": "victim" } })).pid;
    });
    const got = await page.evaluate(async () => {
      const res = await fetch("/s/victim/whoami");
      return { status: res.status, text: await res.text() };
    });
    expect(got.text).not.toContain(`"pid":${pid}`);
    expect(got.status).toBe(421);
    expect(JSON.parse(got.text).message).toContain("data.allowed_hosts");
  });

  it("a name in allowed_hosts is answered", async () => {
    const page = await reboundPage(async (port) =>
      track(await startStack([{}], { listen: `127.0.0.1:${port}`, allowedHosts: ["evil.test"] })),
    );
    const status = await page.evaluate(async () => (await fetch("/s/mine/whoami")).status);
    expect(status).toBe(200);
  });
});

describe("a page of another origin", () => {
  it("cannot run a session's code or create sessions with no-cors requests and form posts", async () => {
    const { s } = await planesUp();
    await whoami(s.url, { headers: { "X-Session-ID": "victim" } });
    const page = await foreignPage();
    const base = s.url;
    await page.evaluate(async (base) => {
      const send = (path: string, init: RequestInit = {}) =>
        fetch(`${base}${path}`, { mode: "no-cors", ...init }).catch(() => undefined);
      await send("/s/victim/whoami");
      await send("/control/stderr?line=pwned&herd_session=victim", { method: "POST", body: "x" });
      await send("/s/created-by-a-page/whoami");
    }, base);
    // A form post navigates a frame: the browser sends Origin and Sec-Fetch-Site for it.
    await page.setContent(
      `<iframe name=f></iframe><form target=f method=POST action="${base}/s/form-made/echo"><input name=a value=1></form>`,
    );
    const posted = page.waitForEvent("requestfinished", (r) => r.url().includes("form-made"));
    await page.evaluate("document.querySelector('form').submit()");
    await posted;

    const after = await whoami(s.url, { headers: { "X-Session-ID": "victim" } });
    expect(after.counter, "the page's request never reached the victim's worker").toBe(2);
    expect(s.herd.lookup("created-by-a-page")).toBeUndefined();
    expect(s.herd.lookup("form-made")).toBeUndefined();
  });

  it("cannot open a WebSocket to a session unless it holds the session's token", async () => {
    const { s } = await planesUp();
    const victim = await s.herd.acquire("p0", "victim");
    const page = await foreignPage();
    const ws = `${s.url.replace("http", "ws")}/s/victim/ws`;
    const open = (url: string) =>
      page.evaluate(
        (url) =>
          new Promise<string>((resolve) => {
            const socket = new WebSocket(url);
            socket.onmessage = (m) => {
              resolve(String(m.data));
              socket.close();
            };
            socket.onclose = () => resolve("closed");
          }),
        url,
      );
    expect(await open(ws)).toBe("closed");
    expect(await open(`${ws}?herd_token=${victim.token}`)).toMatch(/^hello \d+$/);
  });

  it("reads a session's answer when it names the session and carries its token", async () => {
    const { s } = await planesUp();
    const victim = await s.herd.acquire("p0", "shared");
    const page = await foreignPage();
    const status = await page.evaluate(
      async ([base, token]) =>
        (await fetch(`${base}/s/shared/whoami?herd_token=${token}`, { mode: "no-cors" })).type,
      [s.url, victim.token],
    );
    expect(status).toBe("opaque"); // answered; CORS is the worker's own business
    expect((await whoami(s.url, { headers: { "X-Session-ID": "shared" } })).counter).toBe(2);
  });

  it("is refused by the control plane, whose own dashboard still loads", async () => {
    const { cp } = await planesUp();
    const refused = await fetch(`${cp.url}/herd.v1.HerdService/ListSessions`, {
      method: "POST",
      headers: { "content-type": "application/json", origin: "http://evil.test:1234" },
      body: "{}",
    });
    expect(refused.status).toBe(403);
    expect(await refused.json()).toMatchObject({ code: "permission_denied" });
    const own = await fetch(`${cp.url}/herd.v1.HerdService/ListSessions`, {
      method: "POST",
      headers: { "content-type": "application/json", origin: cp.url },
      body: "{}",
    });
    expect(own.status).toBe(200);
    const page = await newPage();
    await page.goto(`${cp.url}/ui`);
    await expect.poll(() => page.title()).toMatch(/herd/i);
  });
});

describe("clients that are not web pages", () => {
  it("are served by IP, localhost or a dotless name; other names get 421 unless allowed", async () => {
    const { s, cp } = await planesUp();
    const statusWith = (url: string, host: string) =>
      new Promise<number>((resolve, reject) => {
        const req = request(url, { method: "GET", headers: { host, "x-session-id": "a" } });
        req.once("response", (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.once("error", reject);
        req.end();
      });
    for (const host of ["127.0.0.1:1", "localhost", "herd:8080", "[::1]:8080"]) {
      expect(await statusWith(`${s.url}/whoami`, host), host).toBe(200);
      expect(await statusWith(`${cp.url}/healthz`, host), host).toBe(200);
    }
    expect(await statusWith(`${s.url}/whoami`, "evil.test")).toBe(421);
    expect(await statusWith(`${cp.url}/healthz`, "evil.test:7070")).toBe(421);
  });
});
