// Issue 18, attack 2, and the default under a non-root daemon: the daemon runs as an
// unprivileged uid (setpriv), so its workers share that uid. With `network: private` their relay
// sockets and the control socket belong to the worker's own uid: only the mount namespace keeps
// them out of reach. A worker must reach neither another pool's relay socket nor the control
// socket, nor find the control token in the daemon's environ; the daemon still starts with a
// default pool and says what is off and why.

import { chmodSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type Daemon,
  expectNoLeaks,
  killAllWithTag,
  newLeakTag,
  startDaemon,
} from "../helpers/index.ts";
import { ask, hostilePool } from "./isolation-harness.ts";

const leak = newLeakTag();
const DAEMON_UID = 233_000 + Math.floor(Math.random() * 1000);
const TOKEN = `token-${leak.tag}`;
let socketDir: string;
let daemon: Daemon;

beforeAll(async () => {
  socketDir = mkdtempSync(join(tmpdir(), "herd-nonroot-"));
  chmodSync(socketDir, 0o777);
  daemon = await startDaemon({
    uid: DAEMON_UID,
    config: {
      control: { token_env: "HERD_TOKEN", socket: join(socketDir, "ctl.sock") },
      workers: {
        a: hostilePool(leak.env, { network: "private" }),
        b: hostilePool(leak.env, { network: "private" }),
        plain: hostilePool(leak.env),
      },
    },
    env: { ...leak.env, HERD_TOKEN: TOKEN },
  });
}, 90_000);

afterAll(async () => {
  const exit = await daemon?.stop();
  try {
    await expectNoLeaks(leak.tag);
  } finally {
    killAllWithTag(leak.tag);
    rmSync(socketDir, { recursive: true, force: true });
    rmSync(join(tmpdir(), `herd-sandbox-u${DAEMON_UID}`), { recursive: true, force: true });
  }
  expect(exit).toEqual({ code: 0, signal: null });
}, 60_000);

/** Every relay socket of the daemon's sandbox directories (under the temp dir: it is not root). */
function relaySockets(): string[] {
  const parent = join(tmpdir(), `herd-sandbox-u${DAEMON_UID}`);
  const roots = readdirSync(parent).filter((n) => n.startsWith(`${daemon.pid}-`));
  return roots.flatMap((root) =>
    (readdirSync(join(parent, root), { recursive: true }) as string[])
      .filter((path) => path.endsWith("relay/http.sock"))
      .map((path) => join(parent, root, path)),
  );
}

describe("a worker of a non-root daemon (same uid as the daemon)", () => {
  it("runs as the daemon's uid, and the daemon said why", async () => {
    expect((await ask(daemon, "plain", "p", "/id")).uid).toBe(DAEMON_UID);
    expect(daemon.stdout()).toContain(
      `pool plain: user: inherit (not available on this host): the daemon runs as uid ${DAEMON_UID}, not root`,
    );
  });

  it.each(["a", "plain"])("%s: cannot reach another pool's relay socket", async (pool) => {
    await ask(daemon, "b", "victim", "/id");
    // Its own relay (reaching itself) is in its own directory, beside its HOME.
    const own = dirname((await ask(daemon, pool, `${pool}-attacker`, "/id")).home);
    const sockets = relaySockets().filter((path) => !path.startsWith(`${own}/`));
    expect(sockets.length).toBeGreaterThanOrEqual(1);
    for (const path of sockets) {
      const r = await ask(
        daemon,
        pool,
        `${pool}-attacker`,
        `/connect?path=${encodeURIComponent(path)}`,
      );
      expect(r.ok, path).toBe(false);
    }
  });

  it.each(["a", "plain"])("%s: cannot reach the control socket", async (pool) => {
    const path = encodeURIComponent(join(socketDir, "ctl.sock"));
    expect((await ask(daemon, pool, `${pool}-attacker`, `/connect?path=${path}`)).ok).toBe(false);
  });

  it("cannot find the control token in the daemon's environ", async () => {
    const r = await ask(daemon, "plain", "p", `/read?path=/proc/${daemon.pid}/environ`);
    expect(String(r.content ?? "")).not.toContain(TOKEN);
  });
});
