// Compiles the daemon and CLI (src/cli/main.ts and everything it imports, gen/ included) and
// the dashboard (ui/, through build-ui.mjs) into dist/, and keeps a checkout from ever running a stale dist/. Plain JavaScript on purpose: it
// runs before anything is compiled.
//
// The compiler is esbuild, the same one tsx used to run src/ at run time, so the semantics are
// unchanged; tsc stays the type checker (`npm run typecheck`). It bundles the ESM dependencies
// (@bufbuild, @connectrpc, zod, yaml) with code splitting, which keeps each command's lazy
// import() lazy: loading ~400 small ES modules was most of a CLI command's start-up time. The
// CommonJS packages with worker/native loading of their own (pino, prom-client, ws) stay
// external and are loaded from node_modules as usual, and so does the Redis client, which only
// cluster mode loads (lazily, with src/cluster's own chunk), and the OpenTelemetry SDK (CommonJS
// requiring node:http, which an ESM bundle cannot), which only a traced daemon loads (lazily,
// with src/telemetry's chunk).
//
// Invariant: dist/.inputs holds the content hash of every compiler input (file names and
// contents under src/ and gen/, package.json, this script, esbuild's package.json) taken before
// the build that produced dist/, and is written only after that build succeeded; so "the
// inputs hash to the stamp" means dist/ is exactly what the sources compile to. Contents, not
// "src newer than dist": checkouts, `git stash`, `cp -p` and clock skew move mtimes in ways
// that make old output look new. The stamp also records each input's size and mtime (ns) as
// last seen; while all are equal nothing was written since, so a start costs a few stats, and
// any difference at all falls back to hashing the contents (~10 ms).
// Concurrency: many `bin/herd` processes may start at once (the test suites do); a build holds
// dist.lock (O_EXCL, holder's pid inside, taken over when that pid is gone), and a process that
// waited for the lock checks the stamp again before building, so N stale starts build once.
//
// Usage: node scripts/build.mjs          (build if stale; `npm install` runs it as `prepare`)
//        import { ensureBuilt } from ...  (bin/herd in a checkout, the vitest global setup)
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const SOURCES = ["src", "gen", "ui"];
const CONFIGS = ["package.json", "scripts/build.mjs", "scripts/build-ui.mjs"];
const ESBUILD_PACKAGE = "node_modules/esbuild/package.json";
const EXTERNAL = ["pino", "prom-client", "ws", "redis", "@opentelemetry/*"];
const DIST = "dist";
const STAMP = join(DIST, ".inputs");
const LOCK = "dist.lock";
const LOCK_WAIT_MS = 300_000;

/** Paths relative to root under rel, as plain strings: path.join and path.relative on every
 * file were half the cost of a start's freshness check (they normalise each path, cold). */
function* files(root, rel) {
  for (const entry of readdirSync(`${root}/${rel}`, { withFileTypes: true })) {
    const path = `${rel}/${entry.name}`;
    if (entry.isDirectory()) yield* files(root, path);
    else if (entry.isFile()) yield path;
  }
}

/** Every file the build reads, relative to root and sorted. Specs are left out (editing one
 * must not cost a rebuild); other files the bundle does not import are in, which can only
 * cause an extra build, never a missed one. esbuild's package.json stands for its version. */
function inputs(root) {
  const sources = SOURCES.flatMap((d) => [...files(root, d)]).filter(
    (p) => !p.endsWith(".spec.ts"),
  );
  const others = [...CONFIGS, ESBUILD_PACKAGE].filter((p) => existsSync(`${root}/${p}`));
  return [...sources, ...others].sort();
}

/** Each input's size and mtime to the nanosecond: any write, checkout or copy changes it. */
function snapshot(root, paths) {
  return paths.map((p) => {
    const st = statSync(`${root}/${p}`, { bigint: true });
    return `${p}\t${st.size}\t${st.mtimeNs}`;
  });
}

/** What of package.json the build reads: all but `scripts`, which `npm pack` rewrites for the
 * length of a pack (scripts/pack-manifest.mjs) while other processes may be starting bin/herd:
 * hashing it whole made them rebuild dist/ under the pack. */
function manifestForBuild(bytes) {
  const { scripts: _, ...rest } = JSON.parse(bytes.toString("utf8"));
  return JSON.stringify(rest);
}

/** The hash of the inputs' names and contents (node:crypto is loaded only when needed). */
async function contentHash(root, paths) {
  const { createHash } = await import("node:crypto");
  const hash = createHash("sha256");
  for (const p of paths) {
    const bytes = readFileSync(`${root}/${p}`);
    hash
      .update(`${p}\0`)
      .update(p === "package.json" ? manifestForBuild(bytes) : bytes)
      .update("\0");
  }
  return hash.digest("hex");
}

/** { hash, files }: the content hash the last build compiled, and the inputs' snapshot. */
function readStamp(root) {
  try {
    const [hash, ...files] = readFileSync(join(root, STAMP), "utf8").trimEnd().split("\n");
    return { hash, files };
  } catch {
    return undefined;
  }
}

/** Written to a temporary name and renamed: a reader sees the old stamp or the new one. */
function writeStamp(root, hash, files) {
  const tmp = join(root, `${STAMP}.${process.pid}`);
  writeFileSync(tmp, `${[hash, ...files].join("\n")}\n`);
  renameSync(tmp, join(root, STAMP));
}

/** Whether dist/ is what the inputs compile to. Fast path: every input's size and mtime are
 * those recorded at the last check (a few stats, no reading). Otherwise the contents decide,
 * and a match (a checkout back and forth, a touch) records the new snapshot. */
export async function isCurrent(root = ROOT) {
  const stamp = readStamp(root);
  if (!stamp) return false;
  const paths = inputs(root);
  const now = snapshot(root, paths);
  if (now.length === stamp.files.length && now.every((line, i) => line === stamp.files[i])) {
    return true;
  }
  if ((await contentHash(root, paths)) !== stamp.hash) return false;
  try {
    writeStamp(root, stamp.hash, now);
  } catch {
    // Only a shortcut for the next check: a reader that may not write dist/ (a daemon run as
    // another user, a read-only tree) still runs what the contents say is current.
  }
  return true;
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

/** The module with every non-ASCII UTF-16 unit written as a \uXXXX escape. V8 keeps each
 * module's source in memory for as long as the process runs, at one byte per character only
 * while no character is beyond Latin-1: one em dash in a comment stored a 500 KB chunk as
 * 1 MB. esbuild escapes strings itself but keeps comments and regular expression literals as
 * they are; in both (and in strings, templates and identifiers) the escape means the same
 * character. After a backslash it would not, so that fails the build instead. The columns of
 * the few escaped lines shift in the source map. */
function asciiOnly(text, file) {
  return text.replace(/[^\0-\x7f]/g, (c, at) => {
    if (text[at - 1] === "\\") {
      throw new Error(`${file}: a backslash before a non-ASCII character: write it as \\u escape`);
    }
    return `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;
  });
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
  const { outputFiles } = await esbuild.build({
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
    write: false,
    // Bundled CommonJS modules call require() for Node built-ins; ESM has none.
    banner: {
      js: 'import { createRequire as __herdCreateRequire } from "node:module"; const require = __herdCreateRequire(import.meta.url);',
    },
  });
  for (const out of outputFiles) {
    mkdirSync(dirname(out.path), { recursive: true });
    writeFileSync(
      out.path,
      out.path.endsWith(".js") ? asciiOnly(out.text, out.path) : out.contents,
    );
  }
  // The dashboard's browser bundle (GET /ui) lives in dist/ too, so one stamp covers both.
  const { buildUi } = await import("./build-ui.mjs");
  await buildUi(join(root, DIST, "ui"));
}

/** Makes dist/ match the sources, compiling when it does not; returns whether it compiled. */
export async function ensureBuilt({
  root = ROOT,
  log = (line) => process.stderr.write(`${line}\n`),
} = {}) {
  if (await isCurrent(root)) return false;
  const unlock = lock(root);
  try {
    if (await isCurrent(root)) return false;
    log("herd: compiling src/ to dist/ (the sources changed since the last build)");
    // Snapshot and hash before compiling: an edit made during the build makes the next
    // start see a difference and build again, rather than be recorded as compiled.
    const paths = inputs(root);
    const files = snapshot(root, paths);
    const hash = await contentHash(root, paths);
    await compile(root);
    writeStamp(root, hash, files);
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
