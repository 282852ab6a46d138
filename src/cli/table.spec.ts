import { describe, expect, it } from "vitest";
import { humanBytes, humanDuration, table } from "./table.ts";

describe("CLI formatting", () => {
  it("aligns tables without trailing spaces", () => {
    expect(
      table(
        ["A", "LONGER"],
        [
          ["xxx", "1"],
          ["y", ""],
        ],
      ),
    ).toBe("A    LONGER\nxxx  1\ny");
  });

  it.each([
    [950, "950ms"],
    [12_000, "12s"],
    [185_000, "3m05s"],
    [900_000, "15m"],
    [7_800_000, "2h10m"],
    [3 * 86_400_000 + 4 * 3_600_000, "3d4h"],
  ])("%d ms → %s", (ms, text) => {
    expect(humanDuration(ms)).toBe(text);
  });

  it("prints sizes in binary units", () => {
    expect(humanBytes(512)).toBe("512 B");
    expect(humanBytes(1536 * 1024 * 1024)).toBe("1.5 GiB");
  });
});
