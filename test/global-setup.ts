// Runs once before any spec: compiles dist/ when the sources changed, so the specs that spawn
// bin/herd run the code under test, and the build happens here once instead of inside the
// first daemon start of a spec (bin/herd would rebuild too, under its lock, but inside a
// daemon's ready timeout).
import { execFileSync } from "node:child_process";
import { join } from "node:path";

export default function setup(): void {
  const root = join(import.meta.dirname, "..");
  execFileSync(process.execPath, [join(root, "scripts/build.mjs")], { stdio: "inherit" });
}
