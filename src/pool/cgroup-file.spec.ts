import { mkdtempSync, readdirSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { CgroupFile } from "./cgroup-file.ts";
import { hostCapabilities } from "./host-capabilities.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function scratchFile(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), "herd-cgroup-file-"));
  dirs.push(dir);
  const path = join(dir, "f");
  writeFileSync(path, text);
  return path;
}

/** How many descriptors this process holds on `path`. */
function openOn(path: string): number {
  return readdirSync("/proc/self/fd").filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`) === path;
    } catch {
      return false;
    }
  }).length;
}

describe("CgroupFile", () => {
  it("reads the whole text from offset 0 every time, through one descriptor kept open", () => {
    const long = `${"1234567\n".repeat(2_000)}`; // beyond the first read buffer
    const path = scratchFile(long);
    const file = new CgroupFile(path, "r");
    expect(file.read()).toBe(long);
    expect(file.read()).toBe(long);
    expect(openOn(path)).toBe(1);
    file.close();
    expect(openOn(path)).toBe(0);
  });

  it("writes at offset 0, and a missing file throws ENOENT and keeps nothing open", () => {
    const path = scratchFile("x");
    const file = new CgroupFile(path, "w");
    file.write("0");
    file.write("7");
    file.close();
    expect(new CgroupFile(path, "r").read()).toBe("7");
    const missing = new CgroupFile(join(path, "..", "nope"), "r");
    expect(() => missing.read()).toThrow(/ENOENT/);
  });

  it("sees a cgroup file's text afresh on each read (the kernel makes it anew from offset 0)", ({
    skip,
  }) => {
    const v2 = hostCapabilities().cgroups.v2;
    if (!v2) skip("needs a cgroup v2 hierarchy");
    const file = new CgroupFile(join(v2!, "cgroup.procs"), "r");
    const before = file.read();
    expect(before).toMatch(/^\d+\n/);
    // Busy the CPU a little: the root's cpu.stat grows between two reads of one descriptor.
    const stat = new CgroupFile(join(v2!, "cpu.stat"), "r");
    const usage = () => Number(/^usage_usec (\d+)$/m.exec(stat.read())?.[1]);
    const first = usage();
    const until = Date.now() + 20;
    while (Date.now() < until) {}
    expect(usage()).toBeGreaterThan(first);
    file.close();
    stat.close();
  });
});
