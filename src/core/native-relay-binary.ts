// Where herd's native relay (native/tunnel-relay) is, if it was built: one binary serves the
// data plane (WebSocket tunnels and relay hops handed to it) and the sandbox (the relay into a
// worker's private network namespace, in its listen mode).

import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** Where scripts/setup-native.sh builds the relay, under herd's package directory. */
export const NATIVE_RELAY_PATH = ".tools/native/tunnel-relay";

/**
 * The relay binary of the package this module belongs to (running from src/ or compiled into
 * dist/), if it was built; else undefined.
 */
export function builtNativeRelay(): string | undefined {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    if (existsSync(join(dir, "package.json"))) {
      const binary = join(dir, NATIVE_RELAY_PATH);
      return existsSync(binary) ? binary : undefined;
    }
    if (dirname(dir) === dir) return undefined;
  }
}
