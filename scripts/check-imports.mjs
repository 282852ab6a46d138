// The import rules of herd's source, checked on every file under src/, test/, bench/, scripts/
// and examples/ (part of `npm run lint` and of the test run through check-imports.spec.ts):
// 1. src/ is made of rooms, one folder each (src/core, src/pool, ...). A file outside a room
//    imports it only through its index.ts, its one export list; everything else is private.
// 2. A room imports only the rooms it is declared to depend on (ROOMS below), and that
//    declaration has no circle: no arrow back up.
// 3. No import cycle between modules, type-only imports included (a cycle of types still ties
//    the files' meaning together).
// Plain JavaScript on purpose, like build.mjs: it runs before anything is compiled. Imports are
// read with TypeScript's own pre-processor (static, type-only, re-exports and import()).
//
// Usage: node scripts/check-imports.mjs [ROOT]   (exit 1 and one line per violation)

import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

/**
 * Each room of src/ and the rooms it may import (its arrows point up this list only). The two
 * planes know the pool engine only through core's SessionDirectory: neither may import it.
 */
export const ROOMS = {
  core: [],
  limits: [],
  edge: [],
  pool: ["core"],
  sandbox: ["core", "pool"],
  config: ["core", "edge", "pool", "sandbox"],
  dataplane: ["core", "edge", "limits"],
  server: ["core", "edge", "limits"],
  cluster: ["core", "config", "pool"],
  tenants: ["core"],
  telemetry: ["core"],
  cli: [
    "core",
    "config",
    "dataplane",
    "pool",
    "sandbox",
    "server",
    "cluster",
    "tenants",
    "telemetry",
  ],
};

const SCANNED = ["src", "test", "bench", "scripts", "examples", "sdk/ts/test"];
const SKIPPED = new Set(["node_modules", "dist", "gen", ".venv", "testdata"]);

function* sourceFiles(root, rel) {
  const dir = join(root, rel);
  if (!existsSync(dir)) return;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = `${rel}/${entry.name}`;
    if (entry.isDirectory()) {
      if (!SKIPPED.has(entry.name)) yield* sourceFiles(root, path);
    } else if (/\.(ts|mts|tsx)$/.test(entry.name) && !entry.name.endsWith(".d.ts")) {
      yield path;
    }
  }
}

/** The room a repository-relative path belongs to ("" outside src/, null for a loose src file). */
function roomOf(path) {
  const parts = path.split("/");
  if (parts[0] !== "src") return "";
  return parts.length > 2 ? parts[1] : null;
}

/** Declared arrows that close a circle, as "a → b → a" lines. */
function circlesIn(rooms) {
  const found = [];
  const visit = (room, trail) => {
    for (const next of rooms[room] ?? []) {
      const at = trail.indexOf(next);
      if (at >= 0) {
        // One line per circle, whichever room it was entered from: start at its first name.
        const circle = trail.slice(at);
        const first = circle.indexOf([...circle].sort()[0]);
        const turned = [...circle.slice(first), ...circle.slice(0, first)];
        found.push([...turned, turned[0]].join(" → "));
      } else visit(next, [...trail, next]);
    }
  };
  for (const room of Object.keys(rooms)) visit(room, [room]);
  return [...new Set(found)];
}

/** Module cycles (strongly connected components of more than one file, or a self-import). */
function cyclesIn(graph) {
  let index = 0;
  const order = new Map();
  const low = new Map();
  const stack = [];
  const onStack = new Set();
  const cycles = [];
  const connect = (file) => {
    order.set(file, index);
    low.set(file, index);
    index++;
    stack.push(file);
    onStack.add(file);
    for (const next of graph.get(file) ?? []) {
      if (!order.has(next)) {
        connect(next);
        low.set(file, Math.min(low.get(file), low.get(next)));
      } else if (onStack.has(next)) {
        low.set(file, Math.min(low.get(file), order.get(next)));
      }
    }
    if (low.get(file) === order.get(file)) {
      const component = [];
      let member;
      do {
        member = stack.pop();
        onStack.delete(member);
        component.push(member);
      } while (member !== file);
      if (component.length > 1 || graph.get(file)?.has(file)) cycles.push(component.sort());
    }
  };
  for (const file of graph.keys()) if (!order.has(file)) connect(file);
  return cycles;
}

/** Every violation under `root`, as "file: what is wrong" lines (empty when all rules hold). */
export function checkImports(root, rooms = ROOMS) {
  const problems = circlesIn(rooms).map((c) => `rooms: declared dependencies form a circle: ${c}`);
  const graph = new Map();
  for (const from of SCANNED.flatMap((dir) => [...sourceFiles(root, dir)])) {
    const fromRoom = roomOf(from);
    if (fromRoom === null) problems.push(`${from}: belongs to no room (src/<room>/...)`);
    const edges = new Set();
    graph.set(from, edges);
    const text = readFileSync(join(root, from), "utf8");
    const { importedFiles } = ts.preProcessFile(text, true, true);
    for (const { fileName: specifier } of importedFiles) {
      if (!specifier.startsWith(".")) continue;
      const to = relative(root, resolve(root, dirname(from), specifier))
        .split("\\")
        .join("/");
      if (!to.startsWith("src/")) {
        edges.add(to);
        continue;
      }
      const toRoom = roomOf(to);
      const where = `${from}: imports ${specifier}`;
      if (toRoom === null) problems.push(`${where}, a file in no room`);
      else if (fromRoom !== toRoom) {
        if (to !== `src/${toRoom}/index.ts`) {
          problems.push(`${where}: private to src/${toRoom} (import src/${toRoom}/index.ts)`);
        }
        if (fromRoom && !(fromRoom in rooms)) {
          problems.push(`${where}: room ${fromRoom} is not declared in the import rules`);
        } else if (fromRoom && !(rooms[fromRoom] ?? []).includes(toRoom)) {
          problems.push(`${where}: room ${fromRoom} may not depend on room ${toRoom}`);
        }
      }
      edges.add(to);
    }
  }
  for (const cycle of cyclesIn(graph)) problems.push(`import cycle: ${cycle.join(", ")}`);
  return problems;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const root = resolve(process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), ".."));
  const problems = checkImports(root);
  for (const p of problems) process.stderr.write(`${p}\n`);
  process.stdout.write(
    problems.length === 0
      ? "imports: every rule holds\n"
      : `imports: ${problems.length} violations\n`,
  );
  process.exitCode = problems.length === 0 ? 0 : 1;
}
