#!/usr/bin/env node
// Builds the dashboard (GET /ui on the control port) into dist/ui: ui/main.ts and what it
// imports (the generated herd.v1 client, @connectrpc/connect-web) bundled by esbuild into one
// ES module, plus the static index.html and style.css. scripts/build.mjs runs it as part of the
// one build (npm install, stale bin/herd starts, the tests); takes well under a second.
// Usage: node scripts/build-ui.mjs [OUTDIR]
import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const STATIC = ["index.html", "style.css", "favicon.svg"];

/** Builds into `outdir` (default dist/ui), replacing what was there. */
export async function buildUi(outdir = join(root, "dist/ui")) {
  rmSync(outdir, { recursive: true, force: true });
  mkdirSync(outdir, { recursive: true });
  await build({
    entryPoints: [join(root, "ui/main.ts")],
    outfile: join(outdir, "app.js"),
    bundle: true,
    format: "esm",
    platform: "browser",
    target: ["chrome111", "firefox111", "safari16.4"],
    minify: true,
    legalComments: "none",
    logLevel: "warning",
  });
  for (const f of STATIC) copyFileSync(join(root, "ui", f), join(outdir, f));
  return outdir;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = await buildUi(process.argv[2] ? resolve(process.argv[2]) : undefined);
  console.error(`build-ui: dashboard built into ${out}`);
}
