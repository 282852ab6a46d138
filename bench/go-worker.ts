// Builds the data-plane bench's Go worker (bench/go-worker/main.go) into .tools/bench/ with the
// Go on PATH (scripts/setup-go.sh); `go build` is incremental, so calling this per run is cheap.
import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

/** The worker binary's path, built if needed; throws with Go's message when it cannot be. */
export function goWorker(): string {
  const out = join(ROOT, ".tools", "bench", "go-worker");
  mkdirSync(dirname(out), { recursive: true });
  try {
    execFileSync("go", ["build", "-o", out, "main.go"], {
      cwd: join(ROOT, "bench", "go-worker"),
      stdio: ["ignore", "ignore", "pipe"],
      env: { ...process.env, GOFLAGS: "-buildvcs=false" },
    });
  } catch (err) {
    throw new Error(
      `bench: cannot build bench/go-worker (run scripts/setup-go.sh): ${(err as Error).message}`,
    );
  }
  return out;
}
