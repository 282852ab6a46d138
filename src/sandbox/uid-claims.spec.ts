import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { UidClaims } from "./uid-claims.ts";

const dirs: string[] = [];
function claimsDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "herd-uid-claims-"));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A pid that ran and is gone (its claim is stale). */
function deadPid(): number {
  return Number(
    spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], {
      encoding: "utf8",
    }).stdout,
  );
}

describe("UidClaims", () => {
  it("holds a uid for one claimant at a time, and frees only its own claim", () => {
    const dir = claimsDir();
    const a = new UidClaims(dir);
    expect(a.claim(7)).toBe(true);
    // Another daemon of this host (a live process: this one, under another start time).
    writeFileSync(
      join(dir, "8"),
      `${process.ppid} ${readFileSync(`/proc/${process.ppid}/stat`, "utf8").split(") ")[1]!.split(" ")[19]}\n`,
    );
    expect(a.claim(8)).toBe(false);
    a.release(8);
    expect(readFileSync(join(dir, "8"), "utf8")).not.toBe("");
    a.release(7);
    expect(a.claim(7)).toBe(true);
  });

  it("takes over the claim of a daemon that is gone, or of a recycled pid", () => {
    const dir = claimsDir();
    writeFileSync(join(dir, "9"), `${deadPid()} 12345\n`);
    writeFileSync(join(dir, "10"), `${process.pid} 1\n`); // our pid, another start time
    const claims = new UidClaims(dir);
    expect(claims.claim(9)).toBe(true);
    expect(claims.claim(10)).toBe(true);
    expect(readFileSync(join(dir, "9"), "utf8")).toMatch(new RegExp(`^${process.pid} `));
  });

  it("a claim naming a worker's lifeline owner stays held while that process lives, not longer", async () => {
    const dir = claimsDir();
    const reaper = spawn("sleep", ["60"], { stdio: "ignore" });
    try {
      const stat = readFileSync(`/proc/${reaper.pid}/stat`, "utf8");
      const owner = { pid: reaper.pid!, startTime: Number(stat.split(") ")[1]!.split(" ")[19]) };
      const daemon = new UidClaims(dir);
      expect(daemon.claim(11, owner)).toBe(true);
      expect(readFileSync(join(dir, "11"), "utf8")).toBe(`${owner.pid} ${owner.startTime}\n`);
      // Another daemon cannot take it while the owner lives; the claimant's own claim is not it.
      expect(new UidClaims(dir).claim(11)).toBe(false);
      daemon.release(11);
      expect(readFileSync(join(dir, "11"), "utf8")).toBe(`${owner.pid} ${owner.startTime}\n`);
      reaper.kill("SIGKILL");
      await once(reaper, "exit");
      expect(new UidClaims(dir).claim(11)).toBe(true);
      expect(daemon.claim(12, owner)).toBe(true);
      daemon.release(12, owner);
      expect(daemon.claim(12)).toBe(true);
    } finally {
      reaper.kill("SIGKILL");
    }
  });
});
