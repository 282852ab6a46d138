// Compiles the daemon and CLI (src/cli/main.ts and everything it imports, gen/ included) into
// dist/, and keeps a checkout from ever running a stale dist/. Plain JavaScript on purpose: it
// runs before anything is compiled.
//
// The compiler is esbuild, the same one tsx used to run src/ at run time, so the semantics are
// unchanged; tsc stays the type checker (`npm run typecheck`). It bundles the ESM dependencies
// (@bufbuild, @connectrpc, zod, yaml) with code splitting, which keeps each command's lazy
// import() lazy: loading ~400 small ES modules was most of a CLI command's start-up time. The
// CommonJS packages with worker/native loading of their own (pino, prom-client, ws) stay
// external and are loaded from node_modules as usual.
//
// Invariant: dist/.inputs holds the hash of every compiler input (file names and contents under
// src/ and gen/, package.json, this script, esbuild's version) and is written only after the
// build succeeded, so "the stamp equals the hash of the inputs now" means dist/ is exactly what
// the sources compile to. A content hash, not mtimes: checkouts, `git stash`, `cp -p` and clock
// skew all move mtimes in ways that could make old output look new; hashing costs ~8 ms.
// Concurrency: many `bin/herd` processes may start at once (the test suites do); a build holds
// dist.lock (O_EXCL, holder's pid inside, taken over when that pid is gone), and a process that
// waited for the lock checks the stamp again before building, so N stale starts build once.
//
// Usage: node scripts/build.mjs          (build if stale; `npm install` runs it as `prepare`)
//        import { ensureBuilt } from ...  (bin/herd in a checkout, the vitest global setup)
import { createHash } from "node:crypto";
import {
  closeSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const SOURCES = ["src", "gen"];
const CONFIGS = ["package.json", "scripts/build.mjs"];
const EXTERNAL = ["pino", "prom-client", "ws"];
const DIST = "dist";
const STAMP = join(DIST, ".inputs");
const LOCK = "dist.lock";
const LOCK_WAIT_MS = 300_000;

function* files(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* files(path);
    else if (entry.isFile()) yield path;
  }
}

/** The hash of everything the build reads. Specs are left out (editing one must not cost a
 * rebuild); other files the bundle does not import are hashed anyway, which can only cause an
 * extra build, never a missed one. */
export function inputsHash(root = ROOT) {
  const hash = createHash("sha256");
  const paths = SOURCES.flatMap((d) => [...files(join(root, d))])
    .filter((p) => !p.endsWith(".spec.ts"))
    .sort();
  for (const path of [...paths, ...CONFIGS.map((c) => join(root, c))]) {
    hash.update(`${relative(root, path)}\0`);
    hash.update(readFileSync(path));
    hash.update("\0");
  }
  hash.update(esbuildVersion(root));
  return hash.digest("hex");
}

function esbuildVersion(root) {
  try {
    return JSON.parse(readFileSync(join(root, "node_modules/esbuild/package.json"), "utf8"))
      .version;
  } catch {
    return "none";
  }
}

function stamp(root) {
  try {
    return readFileSync(join(root, STAMP), "utf8").trim();
  } catch {
    return undefined;
  }
}

export function isCurrent(root = ROOT) {
  return stamp(root) === inputsHash(root);
}

const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === "EPERM";
  }
}

/** Takes dist.lock, waiting for a live holder and taking over from a dead one. */
function lock(root) {
  const path = join(root, LOCK);
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      const fd = openSync(path, "wx");
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => rmSync(path, { force: true });
    } catch (err) {
      if (err.code !== "EEXIST") throw err;
    }
    let holder = Number.NaN;
    try {
      holder = Number(readFileSync(path, "utf8"));
    } catch {}
    // An empty file is a holder between open and write; only a named dead pid is stale.
    if (holder > 0 && !alive(holder)) {
      try {
        unlinkSync(path);
      } catch {}
      continue;
    }
    if (Date.now() > deadline) {
      throw new Error(`${path}: still held by pid ${holder} after ${LOCK_WAIT_MS / 1000} s`);
    }
    sleep(100);
  }
}

async function compile(root) {
  let esbuild;
  try {
    esbuild = await import(createRequire(join(root, "package.json")).resolve("esbuild"));
  } catch {
    throw new Error(
      "dist/ is missing or older than src/, and esbuild is not installed to rebuild it: run `npm install`",
    );
  }
  rmSync(join(root, DIST), { recursive: true, force: true });
  await esbuild.build({
    absWorkingDir: root,
    entryPoints: { main: "src/cli/main.ts" },
    outdir: DIST,
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "node",
    target: "node20",
    external: EXTERNAL,
    sourcemap: true,
    logLevel: "error",
    // Bundled CommonJS modules call require() for Node built-ins; ESM has none.
    banner: {
      js: 'import { createRequire as __herdCreateRequire } from "node:module"; const require = __herdCreateRequire(import.meta.url);',
    },
  });
}

/** Makes dist/ match the sources, compiling when it does not; returns whether it compiled. */
export async function ensureBuilt({
  root = ROOT,
  log = (line) => process.stderr.write(`${line}\n`),
} = {}) {
  if (isCurrent(root)) return false;
  const unlock = lock(root);
  try {
    const want = inputsHash(root);
    if (stamp(root) === want) return false;
    log("herd: compiling src/ to dist/ (the sources changed since the last build)");
    await compile(root);
    writeFileSync(join(root, STAMP), `${want}\n`);
    return true;
  } finally {
    unlock();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  try {
    await ensureBuilt();
  } catch (err) {
    process.stderr.write(`${err.message}\n`);
    process.exitCode = 1;
  }
}
