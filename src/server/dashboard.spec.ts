// GET /ui on a real control plane: the static page loads without a token (it holds no data)
// while every RPC still needs one, every response carries the strict CSP, and no request path
// reaches a file outside the dashboard's directory. The page itself is driven in Chromium by
// test/dashboard/dashboard.spec.ts.
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code } from "@connectrpc/connect";
import { afterEach, describe, expect, it } from "vitest";
import {
  codeOf,
  type Harness,
  herdClient,
  startHarness,
} from "../../test/helpers/control-plane-harness.ts";
import { DASHBOARD_CSP, serveDashboard } from "./dashboard.ts";

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const get = (url: string) => fetch(url, { redirect: "manual" });

describe("GET /ui", () => {
  it("serves the page and its assets without a token, under a strict CSP, while RPCs need one", async () => {
    h = await startHarness([{}], { token: "s3cret" });
    const base = h.cp.url;

    const redirect = await get(`${base}/ui`);
    expect(redirect.status).toBe(308);
    expect(redirect.headers.get("location")).toBe("/ui/");

    const page = await get(`${base}/ui/`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toBe("text/html; charset=utf-8");
    const html = await page.text();
    expect(html).toContain('<script type="module" src="app.js"></script>');
    for (const [path, type] of [
      ["app.js", "text/javascript; charset=utf-8"],
      ["style.css", "text/css; charset=utf-8"],
      ["favicon.svg", "image/svg+xml"],
    ] as const) {
      const r = await get(`${base}/ui/${path}`);
      expect(r.status, path).toBe(200);
      expect(r.headers.get("content-type"), path).toBe(type);
    }
    for (const r of [redirect, page]) {
      expect(r.headers.get("content-security-policy")).toBe(DASHBOARD_CSP);
      expect(r.headers.get("x-content-type-options")).toBe("nosniff");
    }
    expect(DASHBOARD_CSP).toContain("script-src 'self'");
    expect(DASHBOARD_CSP).not.toContain("unsafe");
    // No inline script or style in the page: the CSP would block them.
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)|\bon[a-z]+=|<style|style=/i);

    const c = herdClient("connect-h1", base);
    expect(await codeOf(c.getStats({}))).toBe(Code.Unauthenticated);
  });

  it("serves only the dashboard's own flat files", async () => {
    h = await startHarness();
    for (const path of [
      "/ui/../package.json",
      "/ui/%2e%2e/package.json",
      "/ui/..%2fpackage.json",
      "/ui/x/app.js",
      "/ui/app.js.map",
      "/ui/nope.js",
      "/ui/App.js",
    ]) {
      const r = await get(`${h.cp.url}${path}`);
      expect(r.status, path).toBe(404);
      expect(await r.text(), path).not.toContain('"name": "herd"');
    }
    const post = await fetch(`${h.cp.url}/ui/`, { method: "POST" });
    expect(post.status).toBe(404);
  });

  it("says how to build the dashboard when its files are missing", async () => {
    const empty = mkdtempSync(join(tmpdir(), "herd-ui-"));
    const server = createServer((req, res) => {
      void serveDashboard(req, res, req.url ?? "/", empty);
    });
    await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
    try {
      const { port } = server.address() as { port: number };
      const r = await get(`http://127.0.0.1:${port}/ui/`);
      expect(r.status).toBe(503);
      expect(await r.text()).toContain("npm run build");
    } finally {
      server.closeAllConnections();
      await new Promise<void>((ok) => server.close(() => ok()));
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
