import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
// @ts-expect-error: plain JavaScript without declarations, like build.mjs
import { checkImports, ROOMS } from "./check-imports.mjs";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const SCRIPT = join(ROOT, "scripts/check-imports.mjs");
const check = checkImports as (root: string, rooms?: Record<string, string[]>) => string[];

const made: string[] = [];
afterEach(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A repository of its own: files by path, each "ok" or a list of imports. */
function fixture(files: Record<string, string[]>): string {
  const root = mkdtempSync(join(tmpdir(), "herd-check-imports-"));
  made.push(root);
  for (const [path, imports] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    const lines = imports.map((i, n) => i.replace("$", `x${n}`));
    writeFileSync(join(root, path), `${lines.join("\n")}\nexport const here = 1;\n`);
  }
  return root;
}

const rooms = { a: [], b: ["a"] };
const lawful = {
  "src/a/index.ts": ['export { inner } from "./inner.ts";'],
  "src/a/inner.ts": ["export const inner = 1;"],
  "src/b/index.ts": ['import { inner as $ } from "../a/index.ts";'],
  "test/b.spec.ts": ['import { here as $ } from "../src/b/index.ts";'],
};

describe("the import rules", () => {
  it("hold on herd's own source", () => {
    expect(check(ROOT)).toEqual([]);
  });

  it("accept rooms that import each other's index.ts along declared arrows", () => {
    expect(check(fixture(lawful), rooms)).toEqual([]);
  });

  it("refuse an import of another room's private file, from src/ or from outside it", () => {
    const root = fixture({
      ...lawful,
      "src/b/deep.ts": ['import { inner as $ } from "../a/inner.ts";'],
      "bench/deep.ts": ['import { inner as $ } from "../src/a/inner.ts";'],
    });
    expect(check(root, rooms)).toEqual([
      "src/b/deep.ts: imports ../a/inner.ts: private to src/a (import src/a/index.ts)",
      "bench/deep.ts: imports ../src/a/inner.ts: private to src/a (import src/a/index.ts)",
    ]);
  });

  it("refuse an arrow back up, an undeclared room and a circle of declared rooms", () => {
    const root = fixture({
      ...lawful,
      "src/a/up.ts": ['import { here as $ } from "../b/index.ts";'],
      "src/c/index.ts": ['import { here as $ } from "../b/index.ts";'],
    });
    expect(check(root, { ...rooms, b: ["a", "c"], c: ["b"] })).toEqual([
      "rooms: declared dependencies form a circle: b → c → b",
      "src/a/up.ts: imports ../b/index.ts: room a may not depend on room b",
    ]);
    expect(check(root, rooms)).toContain(
      "src/c/index.ts: imports ../b/index.ts: room c is not declared in the import rules",
    );
  });

  it("refuse an import cycle inside a room, type-only imports included", () => {
    const root = fixture({
      ...lawful,
      "src/a/one.ts": ['import type { here as $ } from "./two.ts";'],
      "src/a/two.ts": ['import type { here as $ } from "./three.ts";'],
      "src/a/three.ts": ['import type { here as $ } from "./one.ts";'],
    });
    expect(check(root, rooms)).toEqual([
      "import cycle: src/a/one.ts, src/a/three.ts, src/a/two.ts",
    ]);
  });

  it("refuse a source file in no room", () => {
    const root = fixture({ ...lawful, "src/loose.ts": [] });
    expect(check(root, rooms)).toEqual(["src/loose.ts: belongs to no room (src/<room>/...)"]);
  });

  it("fail the command (and so `npm run lint`) on a violation", () => {
    const root = fixture({
      "src/core/index.ts": [],
      "src/pool/index.ts": ['import { here as $ } from "../core/errors.ts";'],
      "src/core/errors.ts": [],
    });
    const run = spawnSync(process.execPath, [SCRIPT, root], { encoding: "utf8" });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain(
      "src/pool/index.ts: imports ../core/errors.ts: private to src/core (import src/core/index.ts)",
    );
    expect(Object.keys(ROOMS)).toContain("core");
  });
});
