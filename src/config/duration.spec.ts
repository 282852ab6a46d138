import { describe, expect, it } from "vitest";
import { parseDuration } from "./duration.ts";

describe("parseDuration", () => {
  it.each([
    ["15m", 900_000],
    ["1.5s", 1500],
    ["200ms", 200],
    ["1h30m", 5_400_000],
    ["0", 0],
    ["2h0m0.5s", 7_200_500],
    [".5s", 500],
    ["1500us", 2],
    [" 3s ", 3000],
    [2, 2000],
    [0.25, 250],
    [0, 0],
  ] as const)("%j → %d ms", (input, ms) => {
    expect(parseDuration(input)).toEqual({ ms });
  });

  it.each(["15", "15 min", "1d", "", "m", "-1s", "1.5", "1s2", "1ss", "abc"])(
    "rejects %j",
    (input) => {
      const r = parseDuration(input);
      expect(r).toHaveProperty("error");
      expect((r as { error: string }).error).toMatch(/not a duration/);
    },
  );

  it.each(["720h", "596h32m", 3e6, "8760000000h"])(
    "rejects %j, beyond what a Node timer can hold",
    (input) => {
      expect(parseDuration(input)).toEqual({
        error: expect.stringMatching(/too long: at most 596h, about 24.8 days/),
      });
    },
  );

  it("accepts 596h, just under the limit", () => {
    expect(parseDuration("596h")).toEqual({ ms: 596 * 3_600_000 });
  });

  it.each([-1, Number.POSITIVE_INFINITY, Number.NaN])("rejects the number %d", (n) => {
    expect(parseDuration(n)).toHaveProperty("error");
  });
});
