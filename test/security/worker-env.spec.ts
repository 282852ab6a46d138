// Regression for issue 9 item 2: workers inherited the daemon's environment, so
// `control.token_env: HERD_TOKEN` handed the control token (and any cloud credential of the
// daemon) to every worker, readable at /proc/<worker>/environ. Now a worker's environment is
// PATH, HOME, LANG, LC_*, TZ, its pool's env_passthrough names, its pool's env and PORT.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { daemonPerTest } from "../helpers/daemon-per-test.ts";
import { LEAK_TAG_VAR, pidsRunning } from "../helpers/processes.ts";
import { WORKER_FIXTURE } from "../helpers/worker.ts";

const CONTROL_TOKEN = "control-token-never-in-a-worker";
const CLOUD_SECRET = "cloud-secret-never-in-a-worker";

const ctx = daemonPerTest(
  {
    control: { token_env: "HERD_TOKEN" },
    workers: {
      w: {
        cmd: [process.execPath, WORKER_FIXTURE],
        env: { POOL_VAR: "port-{{.Port}}" },
        env_passthrough: ["SHARED_SETTING", "NOT_SET_ANYWHERE"],
      },
    },
  },
  {
    env: {
      HERD_TOKEN: CONTROL_TOKEN,
      FAKE_CLOUD_SECRET: CLOUD_SECRET,
      SHARED_SETTING: "passed-by-name",
    },
  },
);

function environOf(pid: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of readFileSync(`/proc/${pid}/environ`, "utf8").split("\0")) {
    const eq = entry.indexOf("=");
    if (eq > 0) out[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return out;
}

describe("a worker's environment", () => {
  it("holds neither the control token nor the daemon's other secrets", async () => {
    const { dataUrl } = ctx.daemon;
    const env = (await (await fetch(`${dataUrl}/s/env-probe/env`)).json()) as Record<
      string,
      string
    >;
    const { port } = (await (await fetch(`${dataUrl}/s/env-probe/whoami`)).json()) as {
      port: number;
    };
    // Its pid on the host (it is contained: its own pid is renumbered in its PID namespace).
    const [pid] = pidsRunning(ctx.leak.tag, WORKER_FIXTURE);
    expect(pid).toBeDefined();
    for (const seen of [env, environOf(pid!)]) {
      const text = JSON.stringify(seen);
      expect(text).not.toContain(CONTROL_TOKEN);
      expect(text).not.toContain(CLOUD_SECRET);
      expect(seen).toMatchObject({
        PATH: process.env.PATH,
        SHARED_SETTING: "passed-by-name",
        POOL_VAR: `port-${port}`,
        PORT: String(port),
        [LEAK_TAG_VAR]: ctx.leak.tag,
      });
      // PWD (the worker's cwd, no secret) is exported by the /bin/sh that joins the cgroups.
      const allowed = ["PATH", "HOME", "LANG", "TZ", "PORT", "POOL_VAR", "SHARED_SETTING", "PWD"];
      const unexpected = Object.keys(seen).filter(
        (k) => !allowed.includes(k) && !k.startsWith("LC_") && k !== LEAK_TAG_VAR,
      );
      expect(unexpected).toEqual([]);
    }
  });
});
