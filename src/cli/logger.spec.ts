import { describe, expect, it } from "vitest";
import { prettyLine } from "./logger.ts";

describe("pretty log lines", () => {
  it("puts time, level and message first, then the fields", () => {
    const line = prettyLine(
      JSON.stringify({
        level: 30,
        time: Date.UTC(2026, 0, 1, 12, 0, 1, 123),
        msg: "session acquired",
        pool: "demo",
        session: "abc",
        reason: "exit code 1",
      }),
    );
    expect(line).toBe(
      '12:00:01.123 INFO  session acquired pool=demo session=abc reason="exit code 1"\n',
    );
  });

  it("passes through what is not JSON", () => {
    expect(prettyLine("plain text")).toBe("plain text");
  });
});
