import { defineConfig } from "vitest/config";

// Tests spawn real processes and bind real ports; the machine has two cores, so files run
// in a few forks and every test gets generous time. The timeouts only catch hangs: a shared,
// loaded CI machine has been seen to stretch a 5 s test past 30 s, so they are wide. Leak
// checks live in test/helpers. The global setup builds dist/ (what bin/herd runs) first.
export default defineConfig({
  test: {
    include: [
      "src/**/*.spec.ts",
      "scripts/**/*.spec.ts",
      "bench/**/*.spec.ts",
      "test/**/*.spec.ts",
      "sdk/ts/**/*.spec.ts",
      "examples/**/*.spec.ts",
      "ui/**/*.spec.ts",
    ],
    globalSetup: ["test/global-setup.ts"],
    pool: "forks",
    maxWorkers: 2,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    teardownTimeout: 30_000,
  },
});
