// A pool that asks for an isolation the host (or the configuration) cannot give never starts:
// it fails with the reason and the config key, at file:line:col where a config file is involved.

import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Herd, resolvePoolOptions } from "../../src/pool/index.ts";
import { sandboxLauncher } from "../../src/sandbox/index.ts";
import { HERD_BIN, REPO_ROOT, spawnCaptured } from "../helpers/index.ts";
import { HOSTILE } from "./isolation-harness.ts";

const dir = mkdtempSync(join(tmpdir(), "herd-isolation-refusal-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function config(isolation: string): string {
  const file = join(dir, `${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(
    file,
    `control: {listen: "127.0.0.1:0"}\ndata: {listen: "127.0.0.1:0"}\nworkers:\n  boxed:\n    cmd: [node, ${join(REPO_ROOT, HOSTILE)}]\n    isolation: ${isolation}\n`,
  );
  return file;
}

/** A daemon that starts instead of refusing is stopped after a while, so a failure leaves none. */
async function serve(file: string, env: Record<string, string> = {}) {
  const run = spawnCaptured(process.execPath, [HERD_BIN, "serve", "--config", file], { env });
  const stop = setTimeout(() => run.child.kill("SIGTERM"), 60_000);
  const exit = await run.exited;
  clearTimeout(stop);
  return { ...exit, stdout: run.stdout(), stderr: run.stderr() };
}

describe.runIf(process.getuid?.() === 0)("isolation the daemon cannot give", () => {
  it("refuses a private network for a worker running as root, pointing at the key", async () => {
    const file = config("{network: private, user: inherit}");
    const run = await serve(file);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(
      `${file}:6:26: workers.boxed.isolation.network: network: private cannot contain a worker running as root`,
    );
  });

  it("refuses a private filesystem for a root worker (root can undo mounts)", async () => {
    const run = await serve(config("{filesystem: private, user: root}"));
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(
      /:6:29: workers\.boxed\.isolation\.filesystem: filesystem: private cannot contain a worker running as root/,
    );
  });

  it("refuses when bubblewrap is not installed, naming the package", async () => {
    const bin = join(dir, "bin");
    const { mkdirSync } = await import("node:fs");
    mkdirSync(bin, { recursive: true });
    symlinkSync(process.execPath, join(bin, "node"));
    const run = await serve(config("{user: auto, network: private}"), { PATH: bin });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(
      "workers.boxed.isolation.network: needs bubblewrap (bwrap) on PATH: apt-get install bubblewrap",
    );
  });

  it("refuses at pool start too, for pools built in code", async () => {
    const pool = resolvePoolOptions({
      name: "boxed",
      command: [process.execPath, join(REPO_ROOT, HOSTILE)],
      isolation: { network: "private", user: "inherit" },
    });
    await expect(Herd.start([pool], { sandbox: sandboxLauncher() })).rejects.toThrow(
      /workers\.boxed\.isolation\.network: network: private cannot contain a worker running as root/,
    );
    await expect(
      Herd.start([{ ...pool, isolation: { ...pool.isolation, user: "auto" } }]),
    ).rejects.toThrow(/needs a sandbox launcher/);
  });
});
