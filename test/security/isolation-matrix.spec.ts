// Every isolation combination the docs offer a root daemon, against the attacks of issue 18 that
// each must stop: the control token in the daemon's environ, the control socket, nested user
// namespaces, and (for a worker not running as root) writing the daemon's files and signalling
// it. `default` is a pool with no isolation key (egress on a root daemon); `none` is the opt-out, where only the secrets
// stay out of reach. Root workers with a private network or filesystem are refused at start
// (isolation-refusal.spec.ts), so they are not here.

import { rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Daemon, newLeakTag, REPO_ROOT, startDaemon } from "../helpers/index.ts";
import { ask, stopContained, type UidRange, uidRangeKey } from "./isolation-harness.ts";

const leak = newLeakTag();
const UID_RANGE: UidRange = [234_000, 234_099];
const FIXED_UID = 234_500;
const TOKEN = `token-${leak.tag}`;
const SOCKET = `/tmp/herd-ctl-${leak.tag}.sock`;
const DIST_FILE = join(REPO_ROOT, "dist", `herd-matrix-${leak.tag}`);
const range = uidRangeKey(UID_RANGE);

/** name → isolation (undefined: none given), and whether the worker is contained at all. */
const COMBOS: Record<string, [Record<string, string | number> | "none" | undefined, boolean]> = {
  default: [{ uid_range: range }, true],
  "auto-private-egress": [
    { user: "auto", uid_range: range, filesystem: "private", network: "egress" },
    true,
  ],
  "auto-host-egress": [
    { user: "auto", uid_range: range, filesystem: "host", network: "egress" },
    true,
  ],
  "auto-private-private": [
    { user: "auto", uid_range: range, filesystem: "private", network: "private" },
    true,
  ],
  "auto-host-private": [
    { user: "auto", uid_range: range, filesystem: "host", network: "private" },
    true,
  ],
  "auto-private-host": [
    { user: "auto", uid_range: range, filesystem: "private", network: "host" },
    true,
  ],
  "auto-host-host": [{ user: "auto", uid_range: range, filesystem: "host", network: "host" }, true],
  "uid-private-private": [{ user: FIXED_UID, filesystem: "private", network: "private" }, true],
  "inherit-host-host": [{ user: "inherit", filesystem: "host", network: "host" }, false],
  none: ["none", false],
};
const POOLS = Object.keys(COMBOS);
let daemon: Daemon;

beforeAll(async () => {
  const workers: Record<string, unknown> = {};
  for (const [name, [isolation]] of Object.entries(COMBOS)) {
    workers[name] = {
      cmd: ["node", "test/security/hostile-worker.mjs"],
      health_path: "/health",
      env: leak.env,
      ...(isolation ? { isolation } : {}),
    };
  }
  daemon = await startDaemon({
    config: { control: { token_env: "HERD_TOKEN", socket: SOCKET }, workers },
    env: { ...leak.env, HERD_TOKEN: TOKEN },
  });
}, 90_000);

afterAll(async () => {
  rmSync(DIST_FILE, { force: true });
  const exit = await stopContained(daemon, leak.tag, UID_RANGE);
  expect(exit).toEqual({ code: 0, signal: null });
}, 60_000);

describe.each(POOLS)("isolation %s", (pool) => {
  const contained = COMBOS[pool]![1];
  const session = `${pool}-attacker`;

  it("never finds the control token in the daemon's environ", async () => {
    const r = await ask(daemon, pool, session, `/read?path=/proc/${daemon.pid}/environ`);
    expect(String(r.content ?? "")).not.toContain(TOKEN);
  });

  it(`${contained ? "cannot" : "can"} reach the control socket`, async () => {
    const r = await ask(daemon, pool, session, `/connect?path=${encodeURIComponent(SOCKET)}`);
    expect(r.ok).toBe(!contained);
  });

  it(`${contained ? "cannot" : "can"} make a user namespace`, async () => {
    const argv = encodeURIComponent(JSON.stringify(["unshare", "-Ur", "true"]));
    expect((await ask(daemon, pool, session, `/run?argv=${argv}`)).ok).toBe(!contained);
  });

  it(`${contained ? "cannot" : "can"} write the daemon's files or signal it`, async () => {
    const write = await ask(daemon, pool, session, `/write?path=${DIST_FILE}&text=x`);
    rmSync(DIST_FILE, { force: true });
    const signal = await ask(daemon, pool, session, `/signal?pid=${daemon.pid}&sig=0`);
    expect([write.ok, signal.ok]).toEqual([!contained, !contained]);
  });
});
