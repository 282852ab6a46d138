import { configDefaults, defineConfig } from "vitest/config";
import full from "./vitest.config.ts";

// The fast tier, `npm run test:fast`: the specs beside the code (units, and specs on the fake
// worker fixture in process), for a change's inner loop: 82 s here at load 19. `npm test` runs
// everything, these included. Left out: the integration suites under test/, examples/, ui/
// and the SDK's, and the few specs beside the code that run whole daemons, builds or long
// loops, or every RPC against real workers.
const SLOW = [
  "src/server/fuzz.spec.ts", // 20k requests; `npm run fuzz` for more
  "src/cli/cli.spec.ts", // bin/herd daemons end to end
  "src/cli/start-up-footprint.spec.ts", // idle daemons' memory
  "src/server/herd-service.spec.ts", // every RPC against real worker processes (~30 s)
  "src/pool/daemon-death.spec.ts", // SIGKILLed daemons and their orphans
  "scripts/build.spec.ts", // full esbuild builds
];

export default defineConfig({
  test: {
    ...full.test,
    include: ["src/**/*.spec.ts", "scripts/**/*.spec.ts", "bench/**/*.spec.ts"],
    exclude: [...configDefaults.exclude, ...SLOW],
  },
});
