import { defineConfig } from "vitest/config";

// Tests spawn real processes and bind real ports; the machine has two cores, so files run
// in a few forks and every test gets generous time. Leak checks live in test/helpers.
export default defineConfig({
  test: {
    include: [
      "src/**/*.spec.ts",
      "test/**/*.spec.ts",
      "sdk/ts/**/*.spec.ts",
      "examples/**/*.spec.ts",
    ],
    pool: "forks",
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 30_000,
    teardownTimeout: 10_000,
  },
});
