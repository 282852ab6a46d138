// GET /ui: the dashboard's static files (built by scripts/build-ui.mjs into dist/ui), served
// from the control port without a token — they hold no data. Every number on the page comes
// from the browser calling herd.v1.HerdService like any other client, through the same auth.
//
// Stateless: files are read on each request (a handful of small files, and a rebuild shows up
// without a restart). Only flat file names from a fixed set of types are served, so no request
// path can reach outside the directory.

import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { connectNodeAdapter } from "@connectrpc/connect-node";

type NodeHandler = ReturnType<typeof connectNodeAdapter>;

/** dist/ui of the package this module belongs to, whether it runs from src/ or compiled. */
export const DASHBOARD_DIR = join(
  packageRoot(fileURLToPath(new URL(".", import.meta.url))),
  "dist/ui",
);

function packageRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, "package.json"))) return dir;
    if (dirname(dir) === dir) return from;
  }
}

const TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  svg: "image/svg+xml",
};

/**
 * Only the page's own script and stylesheet, and calls back to this origin. Nothing inline can
 * run: a label or stderr line that got into the DOM as markup would still execute nothing.
 */
export const DASHBOARD_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

const ASSET = /^\/ui\/([a-z0-9-]+)\.(html|js|css|svg)$/;

/** Answers GET/HEAD under /ui; returns false for any other request (not handled). */
export async function serveDashboard(
  req: Parameters<NodeHandler>[0],
  res: Parameters<NodeHandler>[1],
  path: string,
  dir = DASHBOARD_DIR,
): Promise<boolean> {
  if (path !== "/ui" && !path.startsWith("/ui/")) return false;
  if (req.method !== "GET" && req.method !== "HEAD") return false;
  const headers = {
    "content-security-policy": DASHBOARD_CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-cache",
  };
  if (path === "/ui") {
    // Relative asset and API URLs in the page resolve against /ui/.
    res.writeHead(308, { ...headers, location: "/ui/", "content-length": 0 });
    res.end();
    return true;
  }
  const m = path === "/ui/" ? ["", "index", "html"] : ASSET.exec(path);
  let body: Buffer | undefined;
  if (m) body = await readFile(join(dir, `${m[1]}.${m[2]}`)).catch(() => undefined);
  if (!m || !body) {
    const missing = path === "/ui/" ? "the dashboard is not built: run `npm run build`\n" : "";
    const text = missing || `no dashboard file ${path}\n`;
    res.writeHead(missing ? 503 : 404, {
      ...headers,
      "content-type": "text/plain; charset=utf-8",
      "content-length": Buffer.byteLength(text),
    });
    res.end(req.method === "HEAD" ? "" : text);
    return true;
  }
  res.writeHead(200, {
    ...headers,
    "content-type": TYPES[m[2]!]!,
    "content-length": body.length,
  });
  res.end(req.method === "HEAD" ? "" : body);
  return true;
}
