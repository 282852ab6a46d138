// herd's own package directory: the nearest one above this file with a package.json. The CLI
// runs from src/cli in a checkout under tsx and from dist/ once compiled (dist/ has no
// package.json), in a checkout or in an installed package alike.

import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

export function packageRoot(): string {
  for (let dir = new URL(".", import.meta.url); ; dir = new URL("..", dir)) {
    if (existsSync(new URL("package.json", dir))) return fileURLToPath(dir);
    if (dir.pathname === "/") throw new Error("herd's package.json not found above its code");
  }
}
