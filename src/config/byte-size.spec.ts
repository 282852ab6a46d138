import { describe, expect, it } from "vitest";
import { parseByteSize } from "./byte-size.ts";

describe("parseByteSize", () => {
  it.each([
    ["512Mi", 512 * 1024 ** 2],
    ["1G", 1e9],
    ["1Gi", 1024 ** 3],
    ["1.5GiB", 1.5 * 1024 ** 3],
    ["64Ki", 65536],
    ["100k", 100_000],
    ["2MB", 2e6],
    ["4096", 4096],
    [4096, 4096],
  ] as const)("%j → %d bytes", (input, bytes) => {
    expect(parseByteSize(input)).toEqual({ bytes });
  });

  it.each(["512m", "1Q", "", "Mi", "-1G", "1 2G"])("rejects %j", (input) => {
    expect((parseByteSize(input) as { error: string }).error).toMatch(/not a size/);
  });

  it.each([-1, 1.5, Number.NaN])("rejects the number %d", (n) => {
    expect(parseByteSize(n)).toHaveProperty("error");
  });
});
