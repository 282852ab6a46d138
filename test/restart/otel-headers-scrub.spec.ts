// The OTLP exporter's headers (OTEL_EXPORTER_OTLP_HEADERS and its _TRACES_ form) often carry
// the collector's token: like the control token, they leave the daemon's /proc/<pid>/environ
// once read (src/sandbox/scrub-environ.ts), where a worker of the daemon's uid could read them;
// and a restart's new process gets them from the old one, and scrubs them from its own. Both
// still send them with their spans (to a receiver started by the test).

import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { spawnCaptured } from "../helpers/captured.ts";
import { HERD_BIN, startDaemon } from "../helpers/daemon.ts";
import { startOtlpReceiver } from "../helpers/otlp-receiver.ts";
import { newLeakTag, pidAlive } from "../helpers/processes.ts";
import { RESTART_CONFIG, stopEveryGeneration, until } from "./restart-helpers.ts";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const NAMES = ["OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"];

/** The names removed, per "secrets removed from the environment" line the daemons logged. */
function removedLogged(stdout: string): string[][] {
  return stdout
    .split("\n")
    .filter((l) => l.includes("secrets removed from the environment"))
    .map((l) => (JSON.parse(l) as { removed: string[] }).removed);
}

describe("OTEL_EXPORTER_OTLP_HEADERS", () => {
  it("is out of /proc/<pid>/environ, before and after a restart, which passes it on", async () => {
    const { tag, env } = newLeakTag();
    const token = randomBytes(12).toString("hex");
    const tenant = randomBytes(12).toString("hex");
    const receiver = await startOtlpReceiver();
    cleanups.push(() => receiver.close());
    const daemon = await startDaemon({
      config: { ...RESTART_CONFIG, log: { level: "debug" } },
      env: {
        ...env,
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_BSP_SCHEDULE_DELAY: "100",
        OTEL_EXPORTER_OTLP_HEADERS: `authorization=Bearer%20${token}`,
        OTEL_EXPORTER_OTLP_TRACES_HEADERS: `x-tenant=${tenant}`,
      },
    });
    cleanups.push(async () => {
      await stopEveryGeneration(tag, daemon);
    });
    const environ = (pid: number) => readFileSync(`/proc/${pid}/environ`, "latin1");
    expect(environ(daemon.pid)).toContain(tag);
    for (const secret of [token, tenant, ...NAMES]) {
      expect(environ(daemon.pid)).not.toContain(secret);
    }
    // They were there (the daemon's environment had them), and it took them out.
    expect(removedLogged(daemon.stdout())).toEqual([expect.arrayContaining(NAMES)]);
    // The exporter still sends them: a traced call's span arrives with both.
    const exported = async () => {
      const before = receiver.headers.length;
      const res = await fetch(`${daemon.controlUrl}/herd.v1.HerdService/GetStats`, {
        method: "POST",
        headers: { "content-type": "application/json", connection: "close" },
        body: "{}",
      });
      expect(res.ok).toBe(true);
      const acquired = await fetch(`${daemon.controlUrl}/herd.v1.HerdService/AcquireSession`, {
        method: "POST",
        headers: { "content-type": "application/json", connection: "close" },
        body: JSON.stringify({ pool: "w" }),
      });
      expect(acquired.ok).toBe(true);
      await until("an export", () => receiver.headers.length > before);
      return receiver.headers.slice(before);
    };
    const sent = { authorization: `Bearer ${token}`, "x-tenant": tenant };
    for (const h of await exported()) expect(h).toMatchObject(sent);

    const run = spawnCaptured(process.execPath, [
      HERD_BIN,
      "restart",
      "--addr",
      daemon.controlUrl,
      "--json",
    ]);
    expect((await run.exited).code, run.stderr()).toBe(0);
    const { pid } = JSON.parse(run.stdout()) as { pid: number };
    // The new process got both from the old one (it removed them from its own environment).
    await until("the new process's scrub", () => removedLogged(daemon.stdout()).length >= 2);
    expect(removedLogged(daemon.stdout())[1]).toEqual(expect.arrayContaining(NAMES));
    for (const secret of [token, tenant, ...NAMES]) expect(environ(pid)).not.toContain(secret);
    await until("the old process to leave", () => (pidAlive(daemon.pid) ? undefined : true));
    // The new process's exports (the old one is gone) carry them too.
    for (const h of await exported()) expect(h).toMatchObject(sent);
    expect(receiver.rejected).toEqual([]);
  }, 120_000);
});
