// Builds the data-plane bench's native helpers into .tools/bench/: the C worker
// (bench/c-worker/worker.c, with cc), the Go worker (bench/go-worker/main.go, with the Go on
// PATH, see scripts/setup-go.sh), the C relay (bench/c-relay/relay.c, with cc), the C proxy
// prototype (bench/c-proxy/proxy.c, with cc) and herd's own
// native tunnel relay for the "herd native" rows (native/tunnel-relay, with cc). Every
// build is cheap when nothing changed, so the bench calls them on every run.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const OUT = join(ROOT, ".tools", "bench");

function build(what: string, dir: string, argv: string[]): void {
  mkdirSync(OUT, { recursive: true });
  try {
    execFileSync(argv[0]!, argv.slice(1), {
      cwd: join(ROOT, "bench", dir),
      stdio: ["ignore", "ignore", "pipe"],
      env: { ...process.env, GOFLAGS: "-buildvcs=false" },
    });
  } catch (err) {
    throw new Error(`bench: cannot build ${what} (bench/${dir}): ${(err as Error).message}`);
  }
}

/** The Go worker's path, built if needed. */
export function goWorker(): string {
  const out = join(OUT, "go-worker");
  build("the Go worker (run scripts/setup-go.sh)", "go-worker", [
    "go",
    "build",
    "-o",
    out,
    "main.go",
  ]);
  return out;
}

/**
 * The C relay's path, built if needed. Named by its source's hash: .tools is shared by every
 * worktree of the machine, and a tree benching another tree's relay would mislead its table.
 */
export function cRelay(): string {
  const source = readFileSync(join(ROOT, "bench", "c-relay", "relay.c"));
  const hash = createHash("sha256").update(source).digest("hex").slice(0, 12);
  const out = join(OUT, `c-relay-${hash}`);
  build("the C relay (needs cc)", "c-relay", ["cc", "-O2", "-Wall", "-o", out, "relay.c"]);
  return out;
}

/** The C prototype of herd's HTTP fast path (bench/c-proxy, issue 26), named by its source's
 *  hash as the C relay is. */
export function cProxy(): string {
  const source = readFileSync(join(ROOT, "bench", "c-proxy", "proxy.c"));
  const hash = createHash("sha256").update(source).digest("hex").slice(0, 12);
  const out = join(OUT, `c-proxy-${hash}`);
  build("the C proxy prototype (needs cc)", "c-proxy", [
    "cc",
    "-O2",
    "-Wall",
    "-Wextra",
    "-o",
    out,
    "proxy.c",
  ]);
  return out;
}

/** herd's native tunnel relay (native/tunnel-relay), built if needed. */
export function tunnelRelay(): string {
  const out = join(OUT, "tunnel-relay");
  build("the native tunnel relay (needs cc)", join("..", "native", "tunnel-relay"), [
    "cc",
    "-O2",
    "-Wall",
    "-o",
    out,
    "tunnel-relay.c",
  ]);
  return out;
}

/** The C HTTP worker's path, built if needed. */
export function cWorker(): string {
  const out = join(OUT, "c-worker");
  build("the C worker (needs cc)", "c-worker", ["cc", "-O2", "-Wall", "-o", out, "worker.c"]);
  return out;
}

/** The Go herd library's bench harness (bench/go-herd: the vendored library and its main). */
export function goHerd(): string {
  const out = join(OUT, "go-herd");
  build("the Go herd library harness (run scripts/setup-go.sh)", "go-herd", [
    "go",
    "build",
    "-o",
    out,
    ".",
  ]);
  return out;
}
