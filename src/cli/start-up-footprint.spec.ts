// limitStartUpFootprint in processes of their own (V8 flags are process-wide): while held, a
// burst of allocation leaves the young generation at the size it had and hot code stays
// unoptimized; released, both behave as V8's defaults do. A flag the user set is left alone.
import { expect, it } from "vitest";
import { REPO_ROOT, runCaptured } from "../../test/helpers/index.ts";

const CHILD = `
import { getHeapSpaceStatistics } from "node:v8";
import { limitStartUpFootprint } from "./src/cli/start-up-footprint.ts";
const youngMiB = () =>
  getHeapSpaceStatistics().find((s) => s.space_name === "new_space").space_size / 2 ** 20;
// Survivors make V8 grow the young generation: keep the last 20 batches alive.
const burst = () => {
  const kept = [];
  for (let i = 0; i < 100; i++) {
    kept.push(Array.from({ length: 20000 }, (_, j) => ({ j, s: "x" + j })));
    if (kept.length > 20) kept.shift();
  }
};
// A hot function of its own for each phase; --trace-opt names the ones TurboFan finishes.
const hot = async (name, rounds) => {
  const f = new Function(\`return function \${name}(n) { let s = 0; for (let i = 0; i < n; i++) s += i % 7; return s; }\`)();
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < 500; i++) f(100);
    await new Promise((r) => setTimeout(r, 5));
  }
};
const before = youngMiB();
const release = limitStartUpFootprint();
burst();
await hot("heldPhase", 20);
const held = youngMiB();
release();
burst();
// Longer, so that a loaded machine still finishes the optimization before the child exits.
await hot("releasedPhase", 60);
console.log(JSON.stringify({ before, held, released: youngMiB() }));
`;

/** The child's figures: its one JSON line (concurrent TurboFan jobs may finish and log after it). */
const figures = (stdout: string) =>
  JSON.parse(stdout.split("\n").find((l) => l.startsWith("{"))!) as Record<string, number>;

const run = (nodeOptions: string[]) =>
  runCaptured(
    process.execPath,
    [...nodeOptions, "--trace-opt", "--import", "tsx", "--input-type=module", "-e", CHILD],
    { cwd: REPO_ROOT },
  );

it("holds young-generation growth and TurboFan during start-up, and restores both after", async () => {
  const r = await run([]);
  expect(r).toMatchObject({ code: 0, stderr: "" });
  const lines = r.stdout.trim().split("\n");
  const { before, held, released } = figures(r.stdout);
  expect(held).toBe(before);
  expect(released).toBeGreaterThan(held!);
  const optimized = lines.filter((l) => l.startsWith("[completed optimizing"));
  expect(optimized.some((l) => l.includes("heldPhase"))).toBe(false);
  expect(optimized.some((l) => l.includes("releasedPhase"))).toBe(true);
});

it("leaves alone what the user set: --no-turbofan stays off, a growth factor stays theirs", async () => {
  const r = await run(["--no-turbofan", "--semi-space-growth-factor=4"]);
  expect(r).toMatchObject({ code: 0, stderr: "" });
  expect(r.stdout).not.toContain("[completed optimizing");
  const { before, held } = figures(r.stdout);
  expect(held).toBeGreaterThan(before!);
});
