// `herd logs` end to end: bin/herd against a real daemon whose workers write to stdout and
// stderr, including the attack a reused worker invites: a session reading the output of the
// tenant before it.

import { execFile, spawn } from "node:child_process";
import { afterEach, describe, expect, it } from "vitest";
import { herdClient } from "../../test/helpers/control-plane-harness.ts";
import { type Daemon, HERD_BIN, REPO_ROOT, startDaemon } from "../../test/helpers/daemon.ts";
import { eventually } from "../../test/helpers/herd.ts";
import { expectNoLeaks, killAllWithTag, newLeakTag } from "../../test/helpers/processes.ts";

function herd(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(HERD_BIN, args, { cwd: REPO_ROOT, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** Makes the session's worker write `line` on stderr, through the data plane. */
async function say(daemon: Daemon, session: string, line: string): Promise<void> {
  const res = await fetch(`${daemon.dataUrl}/control/stderr?line=${encodeURIComponent(line)}`, {
    method: "POST",
    headers: { "X-Session-ID": session },
  });
  expect(res.status).toBe(200);
  await res.arrayBuffer();
}

describe("herd logs", () => {
  let daemon: Daemon | undefined;
  let tag = "";
  afterEach(async () => {
    await daemon?.stop();
    daemon = undefined;
    killAllWithTag(tag);
    await expectNoLeaks(tag);
  });

  it("prints what the session's worker wrote; --follow prints a line written after the call started", async () => {
    const leak = newLeakTag();
    tag = leak.tag;
    daemon = await startDaemon({
      config: {
        workers: {
          demo: { cmd: ["node", "test/fixtures/worker.mjs"], max: 1, health_path: "/health" },
        },
      },
      env: leak.env,
    });
    const addr = ["--addr", daemon.controlUrl];
    const c = herdClient("connect-h1", daemon.controlUrl);
    await c.acquireSession({ sessionId: "logged" });
    await say(daemon, "logged", "first line of logged");
    const once = await herd(["logs", "logged", ...addr]);
    expect(once.code, once.stderr).toBe(0);
    expect(once.stdout).toContain("first line of logged\n");

    const follower = spawn(HERD_BIN, ["logs", "logged", "--follow", ...addr], {
      cwd: REPO_ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let followed = "";
    follower.stdout.on("data", (chunk: Buffer) => {
      followed += chunk.toString();
    });
    const exited = new Promise<number | null>((r) => follower.once("exit", r));
    try {
      // The held part arrives first: the call is under way from then on.
      await eventually("the held part", () => followed.includes("first line of logged\n"), 30_000);
      await say(daemon, "logged", "written after the call started");
      await eventually(
        "the later line",
        () => followed.includes("written after the call started\n"),
        30_000,
      );
      // The stream ends with the session.
      await c.releaseSession({ sessionId: "logged" });
      expect(await exited).toBe(0);
    } finally {
      follower.kill("SIGKILL");
    }

    const json = await herd(["logs", "nobody", ...addr, "--json"]);
    expect(json.code).toBe(1);
    expect(json.stderr).toMatch(/no live session "nobody"/);
  });

  it("a reused worker shows a session none of the output of the session before it", async () => {
    const leak = newLeakTag();
    tag = leak.tag;
    daemon = await startDaemon({
      config: {
        workers: {
          demo: {
            cmd: ["node", "test/fixtures/worker.mjs"],
            max: 1,
            reuse: true,
            health_path: "/health",
          },
        },
      },
      env: leak.env,
    });
    const addr = ["--addr", daemon.controlUrl];
    const c = herdClient("connect-h1", daemon.controlUrl);
    const first = (await c.acquireSession({ sessionId: "tenant-a" })).session!;
    await say(daemon, "tenant-a", "secret of tenant a");
    await eventually(
      "tenant a's line",
      async () => (await herd(["logs", "tenant-a", ...addr])).stdout.includes("secret"),
      30_000,
    );
    await c.releaseSession({ sessionId: "tenant-a" });
    // tenant-a's view closed with its session.
    expect((await herd(["logs", "tenant-a", ...addr])).code).toBe(1);

    const second = (await c.acquireSession({ sessionId: "tenant-b" })).session!;
    expect(second.workerPid).toBe(first.workerPid);
    await say(daemon, "tenant-b", "line of tenant b");
    const b = await eventually(
      "tenant b's line",
      async () => {
        const r = await herd(["logs", "tenant-b", ...addr]);
        return r.stdout.includes("line of tenant b\n") ? r : undefined;
      },
      30_000,
    );
    expect(b.stdout).not.toContain("secret of tenant a");
  });
});
