import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";

// In a child process of its own: scrubbing rewrites the calling process's stack.
const SCRIPT = `
const { scrubEnviron } = await import(${JSON.stringify(new URL("./scrub-environ.ts", import.meta.url).pathname)});
const { readFileSync } = await import("node:fs");
const removed = scrubEnviron(["s3cret-value"], ["NAMED_SECRET"]);
const environ = readFileSync("/proc/self/environ", "latin1");
console.log(JSON.stringify({
  removed: removed.sort(),
  leaked: ["s3cret-value", "named-value"].filter((s) => environ.includes(s)),
  kept: process.env.KEPT,
  keptInEnviron: environ.includes("KEPT=ok"),
  gone: [process.env.BY_VALUE, process.env.NAMED_SECRET],
}));
`;

describe("scrubEnviron", () => {
  it("takes the secrets out of /proc/self/environ and process.env, and nothing else", () => {
    const out = execFileSync(
      process.execPath,
      ["--import", "tsx", "--input-type=module", "-e", SCRIPT],
      {
        env: {
          PATH: process.env.PATH,
          BY_VALUE: "s3cret-value",
          NAMED_SECRET: "named-value",
          KEPT: "ok",
        },
        encoding: "utf8",
      },
    );
    expect(JSON.parse(out)).toEqual({
      removed: ["BY_VALUE", "NAMED_SECRET"],
      leaked: [],
      kept: "ok",
      keptInEnviron: true,
      gone: [null, null],
    });
  });
});
