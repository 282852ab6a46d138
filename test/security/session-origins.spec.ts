// Issue 18, attack 5: cookies across sessions. Every session shares the data plane's origin,
// herd set no cookie of its own, so a page that wanted its later requests authenticated kept
// herd_token where its scripts (and every other session's page on that origin) could read it
// and re-point it. Now herd sets `herd_token` itself when a page is opened with ?herd_token=:
// HttpOnly, SameSite=Strict and scoped to the session (its /s/{id}/ path, or its own host with
// data.session_host, which gives each session an origin of its own). In Debian's Chromium,
// with *.sessions.test resolving to 127.0.0.1, a hostile session's page (what a worker's page
// script can do, run here with page.evaluate) can neither read nor re-point the victim's.
import { request } from "node:http";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { stackTracker, startStack, whoami } from "../dataplane/stack.ts";
import { CHROMIUM_LAUNCH } from "../helpers/index.ts";

const { track, stopAll } = stackTracker();
let browser: Browser;
const contexts: BrowserContext[] = [];

beforeAll(async () => {
  browser = await chromium.launch({
    ...CHROMIUM_LAUNCH,
    args: [...CHROMIUM_LAUNCH.args, "--host-resolver-rules=MAP *.sessions.test 127.0.0.1"],
  });
});
afterAll(async () => {
  await browser?.close();
});
afterEach(async () => {
  for (const c of contexts.splice(0)) await c.close();
  await stopAll();
});

/** One browser profile: the victim's and the attacker's pages share its cookie jar. */
async function profile(): Promise<{ context: BrowserContext; page(): Promise<Page> }> {
  const context = await browser.newContext();
  contexts.push(context);
  return { context, page: () => context.newPage() };
}

interface Whoami {
  pid: number;
  counter: number;
}

const fetchWhoami = (page: Page, url: string) =>
  page.evaluate(async (url) => {
    const res = await fetch(url);
    return { status: res.status, body: res.status === 200 ? await res.json() : await res.text() };
  }, url) as Promise<{ status: number; body: Whoami | string }>;

describe("herd's cookie under path routing", () => {
  it("is HttpOnly, SameSite=Strict, scoped to /s/{id}/, and serves the session's later requests", async () => {
    const s = track(await startStack([{}], { tokens: true }));
    const victim = await s.herd.acquire("p0", "victim");
    const attacker = await s.herd.acquire("p0", "attacker");
    const { context, page } = await profile();

    const v = await page();
    const opened = await v.goto(`${s.url}/s/victim/whoami?herd_token=${victim.token}`);
    expect(opened?.status()).toBe(200);
    const jar = await context.cookies();
    expect(jar).toEqual([
      expect.objectContaining({
        name: "herd_token",
        value: victim.token,
        path: "/s/victim/",
        httpOnly: true,
        sameSite: "Strict",
      }),
    ]);
    // The page's later requests carry it: no token in the page's own hands.
    const later = await fetchWhoami(v, `${s.url}/s/victim/whoami`);
    expect(later.status).toBe(200);

    const a = await page();
    await a.goto(`${s.url}/s/attacker/whoami?herd_token=${attacker.token}`);
    const seen = await a.evaluate("document.cookie");
    expect(seen).not.toContain(victim.token);
    await a.evaluate(`
      document.cookie = "herd_session=attacker; path=/";
      document.cookie = "herd_token=forged; path=/s/victim/";
    `);
    const after = await fetchWhoami(v, `${s.url}/s/victim/whoami`);
    expect(after.status).toBe(200);
    expect((after.body as Whoami).pid).toBe((later.body as Whoami).pid);
  });
});

describe("data.session_host: each session an origin of its own", () => {
  it("routes by Host alone; another session's page cannot read, re-point or use its cookie", async () => {
    const s = track(await startStack([{}], { tokens: true, sessionHost: "{id}.sessions.test" }));
    const victim = await s.herd.acquire("p0", "victim");
    const attacker = await s.herd.acquire("p0", "attacker");
    const origin = (id: string) => `http://${id}.sessions.test:${s.dp.port}`;
    const { context, page } = await profile();

    const v = await page();
    const opened = await v.goto(`${origin("victim")}/whoami?herd_token=${victim.token}`);
    expect(opened?.status()).toBe(200);
    const victimPid = ((await opened!.json()) as Whoami).pid;
    expect(await context.cookies(origin("victim"))).toEqual([
      expect.objectContaining({
        name: "herd_token",
        domain: "victim.sessions.test",
        path: "/",
        httpOnly: true,
        sameSite: "Strict",
      }),
    ]);
    expect((await fetchWhoami(v, "/whoami")).status).toBe(200);

    const a = await page();
    const own = await a.goto(`${origin("attacker")}/whoami?herd_token=${attacker.token}`);
    const attackerPid = ((await own!.json()) as Whoami).pid;
    expect(await a.evaluate("document.cookie")).toBe("");
    // Cookies for the whole sessions.test site, the strongest plant a page can make.
    await a.evaluate(`
      document.cookie = "herd_session=attacker; domain=sessions.test; path=/";
      document.cookie = "herd_token=forged; domain=sessions.test; path=/";
    `);
    // Same site, another origin: the browser sends the victim's Strict cookie along.
    await a.evaluate(
      async (url) => {
        await fetch(url, { mode: "no-cors", credentials: "include" }).catch(() => undefined);
      },
      `${origin("victim")}/whoami`,
    );
    // A path prefix on the attacker's host names nothing: the host alone routes.
    const viaPath = await fetchWhoami(a, "/s/victim/whoami");
    expect(viaPath.body).not.toMatchObject({ pid: victimPid });

    const after = await fetchWhoami(v, "/whoami");
    expect(after.status).toBe(200);
    expect(after.body).toMatchObject({ pid: victimPid });
    expect(attackerPid).not.toBe(victimPid);
    // Only the victim's own requests reached its worker: the opening, two fetches, this one.
    const direct = await whoami(origin("victim").replace(/\/\/[^:]+/, "//127.0.0.1"), {
      headers: { "X-Herd-Token": victim.token, "X-Session-ID": "victim" },
    });
    expect(direct.counter).toBe(4);
  });
});

describe.each([
  { path: "fast", extra: {}, fast: 1 },
  { path: "node:http", extra: { expect: "100-continue" }, fast: 0 },
])("herd's cookie on the $path path", ({ extra, fast }) => {
  const setCookie = (url: string, headers: Record<string, string> = {}) =>
    new Promise<string[] | undefined>((resolve, reject) => {
      const req = request(url, { headers: { ...extra, ...headers } });
      req.once("response", (res) => {
        res.resume();
        resolve(res.headers["set-cookie"]);
      });
      req.once("error", reject);
      req.end();
    });

  it("is set for the session's own token in the query of /s/{id}/ only", async () => {
    const s = track(await startStack([{}], { tokens: true }));
    const { token } = await s.herd.acquire("p0", "v");
    expect(await setCookie(`${s.url}/s/v/whoami?herd_token=${token}`)).toEqual([
      `herd_token=${token}; Path=/s/v/; HttpOnly; SameSite=Strict`,
    ]);
    // A token in a header or a cookie, or a session named by header: nothing to scope it to.
    expect(await setCookie(`${s.url}/s/v/whoami`, { "x-herd-token": token })).toBeUndefined();
    expect(
      await setCookie(`${s.url}/whoami?herd_token=${token}`, { "x-session-id": "v" }),
    ).toBeUndefined();
    expect(s.dp.counters.fastForwarded).toBe(3 * fast);
  });
});
