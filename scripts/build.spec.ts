// scripts/build.mjs on a throwaway checkout (its own src/, gen/, ui/ and package.json, this repo's
// node_modules for esbuild): an edit is never run stale, and concurrent stale starts build once.
import {
  chmodSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { REPO_ROOT, runCaptured } from "../test/helpers/index.ts";

let root: string;

/** What bin/herd does in a checkout: ensure the build, then run dist/main.js. */
const START = `const { ensureBuilt } = await import(process.argv[1] + "/scripts/build.mjs");
await ensureBuilt({ root: process.argv[1] });
await import(process.argv[1] + "/dist/main.js");`;

const start = () =>
  runCaptured(process.execPath, ["--input-type=module", "-e", START, root], { cwd: root });

const writeMain = (says: string) =>
  writeFileSync(
    join(root, "src/cli/main.ts"),
    `import { said } from "./said.ts";\nconsole.log(said("${says}"));\n`,
  );

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "herd-build-"));
  mkdirSync(join(root, "src/cli"), { recursive: true });
  mkdirSync(join(root, "gen"));
  mkdirSync(join(root, "scripts"));
  cpSync(join(REPO_ROOT, "scripts/build.mjs"), join(root, "scripts/build.mjs"));
  // The one build also bundles the dashboard: a minimal ui/ of its own.
  cpSync(join(REPO_ROOT, "scripts/build-ui.mjs"), join(root, "scripts/build-ui.mjs"));
  mkdirSync(join(root, "ui"));
  for (const f of ["main.ts", "index.html", "style.css", "favicon.svg"]) {
    writeFileSync(join(root, "ui", f), "\n");
  }
  writeFileSync(join(root, "package.json"), '{ "type": "module" }\n');
  symlinkSync(join(REPO_ROOT, "node_modules"), join(root, "node_modules"));
  writeFileSync(
    join(root, "src/cli/said.ts"),
    'export const said = (s: string): string => "said " + s;\n',
  );
  writeMain("one");
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

it("builds a missing dist/, reuses a current one, and rebuilds after any source edit", async () => {
  const first = await start();
  expect(first.stdout).toBe("said one\n");
  expect(first.stderr).toContain("compiling src/ to dist/");

  const again = await start();
  expect(again).toMatchObject({ code: 0, stdout: "said one\n", stderr: "" });

  // An edit to a module the entry imports, then one to the entry itself.
  writeFileSync(
    join(root, "src/cli/said.ts"),
    'export const said = (s: string): string => "SAID " + s;\n',
  );
  expect((await start()).stdout).toBe("SAID one\n");
  writeMain("two");
  expect((await start()).stdout).toBe("SAID two\n");
});

it("a touch that changes no content costs no rebuild, however often", async () => {
  await start();
  const later = new Date(Date.now() + 60_000);
  utimesSync(join(root, "src/cli/said.ts"), later, later);
  expect(await start()).toMatchObject({ stdout: "said one\n", stderr: "" });
  expect(await start()).toMatchObject({ stdout: "said one\n", stderr: "" });
});

it("a touch seen by a user who may not write dist/ runs what is built (a non-root daemon)", async () => {
  await start();
  const later = new Date(Date.now() + 60_000);
  utimesSync(join(root, "src/cli/said.ts"), later, later);
  // nobody may read the checkout but not write dist/ (the test runs as root, which could).
  chmodSync(root, 0o755);
  const asNobody = await runCaptured(
    "setpriv",
    [
      "--reuid=65534",
      "--regid=65534",
      "--clear-groups",
      process.execPath,
      "--input-type=module",
      "-e",
      START,
      root,
    ],
    { cwd: root },
  );
  expect(asNobody).toMatchObject({ code: 0, stdout: "said one\n", stderr: "" });
});

it("a spec edit costs no rebuild", async () => {
  await start();
  writeFileSync(join(root, "src/cli/said.spec.ts"), "// a test\n");
  expect((await start()).stderr).toBe("");
});

it("package.json's scripts cost no rebuild (npm pack rewrites them mid-run); the rest does", async () => {
  writeFileSync(
    join(root, "package.json"),
    '{ "type": "module", "scripts": { "prepare": "node scripts/build.mjs" } }\n',
  );
  await start();
  // What scripts/pack-manifest.mjs strip does for the length of a pack.
  writeFileSync(join(root, "package.json"), '{ "type": "module", "scripts": {} }\n');
  expect(await start()).toMatchObject({ stdout: "said one\n", stderr: "" });
  writeFileSync(join(root, "package.json"), '{ "type": "module", "version": "2.0.0" }\n');
  expect((await start()).stderr).toContain("compiling src/ to dist/");
});

it("many stale starts at once build once and all run the new code", async () => {
  await start();
  writeMain("three");
  const runs = await Promise.all(Array.from({ length: 5 }, start));
  for (const r of runs) expect(r).toMatchObject({ code: 0, stdout: "said three\n" });
  expect(runs.filter((r) => r.stderr.includes("compiling")).length).toBe(1);
});

it("a compile error fails the start with the compiler's message, and runs nothing old", async () => {
  await start();
  writeFileSync(join(root, "src/cli/main.ts"), 'console.log("unclosed);\n');
  const r = await start();
  expect(r.code).not.toBe(0);
  expect(r.stdout).toBe("");
  expect(r.stderr).toContain("Unterminated string literal");
});

it("writes every module as ASCII, so V8 keeps its source at one byte a character", async () => {
  // An em dash in a comment and a µ in a regular expression: esbuild keeps both as they are.
  writeFileSync(
    join(root, "src/cli/main.ts"),
    "// microseconds \u2014 either sign\nconsole.log(/^(\u00b5s|\u03bcs)$/.test(process.argv[2]) ? 'yes' : 'no');\n",
  );
  const r = await runCaptured(
    process.execPath,
    ["--input-type=module", "-e", START, root, "\u03bcs"],
    {
      cwd: root,
    },
  );
  expect(r).toMatchObject({ code: 0, stdout: "yes\n" });
  for (const f of readdirSync(join(root, "dist")).filter((f) => f.endsWith(".js"))) {
    expect(readFileSync(join(root, "dist", f), "utf8")).toMatch(/^[\0-\x7f]*$/);
  }
});

it("a non-ASCII character after a backslash fails the build rather than change meaning", async () => {
  writeFileSync(join(root, "src/cli/main.ts"), "console.log(/\\\u00e9/.source);\n");
  const r = await start();
  expect(r.code).not.toBe(0);
  expect(r.stderr).toContain("a backslash before a non-ASCII character");
});
