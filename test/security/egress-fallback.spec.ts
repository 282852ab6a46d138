// What a daemon that cannot give `network: egress` (not root) does with it: a pool that says
// nothing about `network` falls back to `private` and its start line says why; a pool that asks
// for `egress` is refused at start with the reason at the key. The daemon runs as nobody
// (setpriv); its config lives in a directory nobody can read.

import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { stringify } from "yaml";
import {
  expectNoLeaks,
  HERD_BIN,
  killAllWithTag,
  LEAK_TAG_VAR,
  newLeakTag,
  REPO_ROOT,
  runCaptured,
  spawnCaptured,
} from "../helpers/index.ts";
import { HOSTILE } from "./isolation-harness.ts";

const leak = newLeakTag();
const dir = mkdtempSync("/tmp/herd-egress-fallback-");
chmodSync(dir, 0o755);

afterAll(() => {
  killAllWithTag(leak.tag);
  rmSync(dir, { recursive: true, force: true });
});

function config(name: string, isolation?: Record<string, unknown>): string {
  const file = join(dir, `${name}.yaml`);
  const pool = {
    cmd: ["node", join(REPO_ROOT, HOSTILE)],
    health_path: "/health",
    env_passthrough: [LEAK_TAG_VAR],
    ...(isolation ? { isolation } : {}),
  };
  writeFileSync(
    file,
    stringify({
      workers: { w: pool },
      control: { listen: "127.0.0.1:0" },
      data: { listen: "127.0.0.1:0" },
    }),
    { mode: 0o644 },
  );
  return file;
}

const asNobody = [
  "--reuid",
  "65534",
  "--regid",
  "65534",
  "--clear-groups",
  "--",
  "env",
  `HOME=${dir}`,
];

it("a non-root daemon gives a pool with network unset private, and says why", async () => {
  const daemon = spawnCaptured(
    "setpriv",
    [...asNobody, process.execPath, HERD_BIN, "serve", "--config", config("unset")],
    { env: leak.env },
  );
  try {
    for (let waited = 0; !daemon.stdout().includes("herd is ready"); waited += 100) {
      if (waited > 60_000 || daemon.child.exitCode !== null) {
        throw new Error(`not ready: ${daemon.stdout()}${daemon.stderr()}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(daemon.stdout()).toMatch(
      /pool w: network: private \(own namespace, no route out.*\) \(not available on this host\): network: egress needs the daemon to run as root/,
    );
  } finally {
    daemon.child.kill("SIGTERM");
  }
  expect(await daemon.exited).toEqual({ code: 0, signal: null });
  await expectNoLeaks(leak.tag);
}, 90_000);

it("a non-root daemon refuses a pool that asks for network: egress, at the key", async () => {
  const file = config("explicit", { network: "egress" });
  const done = await runCaptured(
    "setpriv",
    [...asNobody, process.execPath, HERD_BIN, "serve", "--config", file],
    {
      env: leak.env,
    },
  );
  expect(done.code).toBe(2);
  expect(done.stderr).toContain(`${file}:`);
  expect(done.stderr).toMatch(
    /workers\.w\.isolation\.network: network: egress needs the daemon to run as root/,
  );
}, 60_000);
