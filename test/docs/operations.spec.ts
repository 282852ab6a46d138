// The failure lines docs/operations.md quotes are what herd really prints: each one is
// reproduced here with the real CLI and compared verbatim.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HERD_BIN, REPO_ROOT } from "../helpers/daemon.ts";
import { expectNoLeaks, newLeakTag } from "../helpers/processes.ts";

const doc = readFileSync(new URL("../../docs/operations.md", import.meta.url), "utf8");
const quoted =
  /usage or bad config\.[^`]*```\n([\s\S]*?)```/.exec(doc)?.[1]?.trim().split("\n") ?? [];

const leak = newLeakTag();
let dir: string;
let blocker: Server;
let blockedPort: number;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "herd-docs-"));
  blocker = createServer();
  await new Promise<void>((ok) => blocker.listen(0, "127.0.0.1", ok));
  blockedPort = (blocker.address() as { port: number }).port;
});
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await new Promise((ok) => blocker.close(ok));
  await expectNoLeaks(leak.tag);
});

function herd(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [HERD_BIN, ...args], {
      cwd: dir,
      env: { ...process.env, ...leak.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
    });
    child.stderr.on("data", (d) => {
      out += d;
    });
    child.once("close", (code) => resolve({ code, out }));
  });
}

describe("docs/operations.md failure lines", () => {
  it("quotes four of them", () => {
    expect(quoted).toHaveLength(4);
  });

  it("no config file", async () => {
    const r = await herd(["serve"]);
    expect(r.code).toBe(2);
    // The docs quote it as run from the checkout; from elsewhere the demo's path is absolute.
    expect(r.out.trim().replace(join(REPO_ROOT, "examples"), "examples")).toBe(quoted[0]);
  });

  it("a worker command that does not exist", async () => {
    writeFileSync(join(dir, "bad.yaml"), 'workers:\n  w:\n    cmd: ["no-such-prog"]\n');
    const r = await herd(["serve", "--config", "bad.yaml"]);
    expect(r.code).toBe(2);
    expect(r.out).toContain(quoted[1]);
  });

  it("a misspelt key", async () => {
    writeFileSync(
      join(dir, "typo.yaml"),
      'workers:\n  w:\n    cmd: ["node"]\n    min: 1\n    mx: 3\n',
    );
    const r = await herd(["serve", "--config", "typo.yaml"]);
    expect(r.code).toBe(2);
    expect(r.out).toContain(quoted[2]);
  });

  it("a port in use", async () => {
    writeFileSync(
      join(dir, "herd.yaml"),
      `control:\n  listen: "127.0.0.1:${blockedPort}"\nworkers:\n  w:\n    cmd: ["node", "w.mjs", "{{.Port}}"]\n`,
    );
    const r = await herd(["serve", "--config", "herd.yaml"]);
    expect(r.code).toBe(1);
    expect(r.out.trim().replaceAll(String(blockedPort), "7070")).toBe(quoted[3]);
  });
});
