import { describe, expect, it } from "vitest";
import { fences } from "./fences.ts";

describe("fences", () => {
  it("reads language, body and line of each block, and skips inline code", () => {
    const md = [
      "# t", // 1
      "Run `npm start` ```not a fence``` here.", // 2
      "```sh", // 3
      "npm install", // 4
      "```", // 5
      "", // 6
      "  ~~~~ Python title=x", // 7
      "a = 1", // 8
      "~~~", // 9: shorter than the opening, stays inside
      "~~~~~", // 10
      "```", // 11
      "```", // 12
    ].join("\n");
    expect(fences(md)).toEqual([
      { lang: "sh", body: "npm install\n", line: 3 },
      { lang: "python", body: "a = 1\n~~~\n", line: 7 },
      { lang: "", body: "", line: 11 },
    ]);
  });

  it("refuses an unclosed fence, naming where it opened", () => {
    expect(() => fences("x\n```yaml\na: 1\n", "README.md")).toThrow(
      "README.md:2: code fence ``` is never closed",
    );
  });
});
