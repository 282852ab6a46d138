// `npm test`: runs every suite in turn, each one even when an earlier one failed, streams its
// output as it comes, and ends with one table (suite, result, time, the suite's own closing
// line, e.g. vitest's "Tests  412 passed"). Exits 1 when any suite failed.
// Usage: node scripts/test.mjs [SUITE...]   (default: all; names as in the table)
import { spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const bin = (name) => join(ROOT, "node_modules/.bin", name);

/** `last`: the output line that sums the suite up (the last one matching). */
const SUITES = [
  { name: "lint", cmd: [bin("biome"), "check", "."], last: /^(Checked \d+ files|Found \d+ error)/ },
  { name: "imports", cmd: ["node", "scripts/check-imports.mjs"], last: /^imports: / },
  {
    name: "typecheck",
    cmd: [bin("tsc"), "--noEmit", "-p", "tsconfig.json"],
    last: /error TS|Found \d+ error/,
  },
  { name: "vitest", cmd: [bin("vitest"), "run"], last: /^\s*Tests\s+\d/ },
  { name: "python", cmd: ["bash", "sdk/python/test.sh", "-q"], last: /\d+ (passed|failed)|error/i },
  {
    name: "go",
    cmd: ["bash", "-c", "cd sdk/go && go vet ./... && go test -count=1 ./..."],
    last: /^(ok|FAIL|---)/,
  },
];

/** Without colour codes and tabs (go test aligns with tabs), for the table. */
const plain = (line) =>
  line
    .replace(/\x1b\[[0-9;]*m/g, "")
    .replaceAll("\t", " ")
    .trimEnd();

function run(suite) {
  const shown = suite.cmd.map((a) => a.replace(`${bin("")}`, "")).join(" ");
  process.stdout.write(`\n== test: ${suite.name} (${shown})\n`);
  const started = Date.now();
  let summary = "";
  let partial = "";
  const scan = (chunk, sink) => {
    sink.write(chunk);
    const lines = (partial + chunk.toString()).split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines.map(plain)) if (suite.last.test(line)) summary = line.trim();
  };
  return new Promise((resolve) => {
    const child = spawn(suite.cmd[0], suite.cmd.slice(1), {
      cwd: ROOT,
      stdio: ["inherit", "pipe", "pipe"],
      env: {
        ...process.env,
        // The Go that scripts/setup-go.sh fetched when PATH had none new enough.
        PATH: `${join(ROOT, ".tools/go/bin")}:${process.env.PATH}`,
        FORCE_COLOR: process.stdout.isTTY ? "1" : "0",
      },
    });
    child.stdout.on("data", (c) => scan(c, process.stdout));
    child.stderr.on("data", (c) => scan(c, process.stderr));
    const done = (ok, why) =>
      resolve({ name: suite.name, ok, seconds: (Date.now() - started) / 1000, summary, why });
    child.on("error", (err) => done(false, err.message));
    child.on("close", (code, signal) =>
      done(code === 0, code === 0 ? "" : signal ? `killed by ${signal}` : `exit ${code}`),
    );
  });
}

const wanted = process.argv.slice(2);
const unknown = wanted.filter((w) => !SUITES.some((s) => s.name === w));
if (unknown.length > 0) {
  process.stderr.write(
    `test: unknown suite ${unknown.join(", ")}; suites: ${SUITES.map((s) => s.name).join(", ")}\n`,
  );
  process.exit(2);
}
const results = [];
for (const suite of SUITES) {
  if (wanted.length === 0 || wanted.includes(suite.name)) results.push(await run(suite));
}

const rows = [
  ["SUITE", "RESULT", "TIME", "LAST LINE"],
  ...results.map((r) => [
    r.name,
    r.ok ? "ok" : `FAILED (${r.why})`,
    `${r.seconds.toFixed(1)} s`,
    r.summary,
  ]),
];
const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
process.stdout.write("\n== test: summary\n");
for (const row of rows) {
  process.stdout.write(
    `${row
      .map((cell, i) => cell.padEnd(widths[i]))
      .join("  ")
      .trimEnd()}\n`,
  );
}
const failed = results.filter((r) => !r.ok).map((r) => r.name);
process.stdout.write(
  failed.length === 0 ? "all suites passed\n" : `failed: ${failed.join(", ")}\n`,
);
process.exitCode = failed.length === 0 ? 0 : 1;
