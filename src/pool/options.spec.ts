import { describe, expect, it } from "vitest";
import { type PoolOptionsInput, resolvePoolOptions } from "./options.ts";

describe("resolvePoolOptions", () => {
  it("fills defaults and derives readiness from the health path", () => {
    const o = resolvePoolOptions({ name: "b", command: ["x"], healthPath: "/" });
    expect(o).toMatchObject({ min: 0, max: 10, reuse: true, ready: { kind: "http", path: "/" } });
    expect(resolvePoolOptions({ name: "b", command: ["x"] }).ready).toEqual({ kind: "tcp" });
    expect(o.envPassthrough).toEqual([]);
  });

  it.each([
    [{ min: 3, max: 2 }, /min: must not exceed max \(3 > 2\)/],
    [{ max: 0 }, /max: must be an integer >= 1/],
    [{ command: [] }, /command: must name a program/],
    [{ name: "bad name" }, /name: use 1-63/],
    [{ ready: { kind: "stdout", pattern: "(" } }, /ready.stdout: not a valid regular expression/],
    [{ limits: { memoryBytes: 10 } }, /limits.memory: must be at least 1 MiB/],
    [{ healthPath: "health" }, /healthPath: must start with \//],
    [{ env: { "A-B": "1" } }, /env: "A-B" is not a variable name/],
    [{ envPassthrough: ["OK", "1BAD"] }, /envPassthrough: "1BAD" is not a variable name/],
    [{ queueLimit: 10_001 }, /queueLimit: must be at most 10000/],
    [{ maxLifetimeMs: 2 ** 31 }, /maxLifetimeMs: must be at most 2147483647 ms \(596h/],
  ] as [Partial<PoolOptionsInput>, RegExp][])("rejects %j", (bad, message) => {
    expect(() => resolvePoolOptions({ name: "p", command: ["x"], ...bad })).toThrow(message);
  });
});
