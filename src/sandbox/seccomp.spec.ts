import { describe, expect, it } from "vitest";
import { seccompFilter } from "./seccomp.ts";

describe("seccompFilter", () => {
  it("is whole instructions for the machines herd has tables for, every jump landing inside", () => {
    for (const machine of ["x64", "arm64"] as const) {
      const bpf = seccompFilter(machine)!;
      expect(bpf.length % 8).toBe(0);
      const n = bpf.length / 8;
      for (let i = 0; i < n; i++) {
        const code = bpf.readUInt16LE(i * 8);
        if ((code & 0x07) !== 0x05) continue; // not a jump
        expect(i + 1 + bpf.readUInt8(i * 8 + 2)).toBeLessThan(n);
        expect(i + 1 + bpf.readUInt8(i * 8 + 3)).toBeLessThan(n);
      }
      // The last instruction returns (ENOSYS for clone3).
      expect(bpf.readUInt16LE((n - 1) * 8)).toBe(0x06);
    }
  });

  it("is absent where herd knows no syscall table, so the report can say so", () => {
    expect(seccompFilter("ia32")).toBeUndefined();
  });
});
