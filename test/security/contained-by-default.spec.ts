// Issue 18, contained by default (attacks 1, 3, 6, 9): a pool that says nothing about
// `isolation` gets the strongest containment the host gives. Each attack runs from three pools
// of one root daemon: `plain` (no isolation key but its own uid_range), `boxed` (every key
// explicit) and `none` (`isolation: none`, the explicit opt-out, where most attacks still work
// and document what the opt-out costs); `hostnet` (the default but `network: host`) is the
// worker on the host's network that the control plane refuses by uid (attack 3). Secrets stay out of reach even of `none`. A second
// daemon with the same uid_range proves two daemons never hand out one uid at once.

import { readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type Daemon,
  expectNoLeaks,
  HERD_BIN,
  killAllWithTag,
  newLeakTag,
  REPO_ROOT,
  runCaptured,
  startDaemon,
} from "../helpers/index.ts";
import {
  ask,
  expectNoIsolationLeaks,
  hostilePool,
  type UidRange,
  uidRangeKey,
} from "./isolation-harness.ts";

const leak = newLeakTag();
const UID_RANGE: UidRange = [232_000, 232_019];
/** One uid, in a pool of both daemons: only one of them may hold it at a time. */
const ONE_UID: UidRange = [232_100, 232_100];
const TOKEN = `token-${leak.tag}`;
const SOCKET = `/tmp/herd-ctl-${leak.tag}.sock`;
const DIST_FILE = join(REPO_ROOT, "dist", `herd-attack-${leak.tag}`);
let daemon: Daemon;
let twin: Daemon;

const config = (socket?: string) => ({
  // The twin (no socket) runs without a control token: the loopback control plane of attack 3.
  control: socket ? { token_env: "HERD_TOKEN", socket } : {},
  workers: {
    plain: { ...hostilePool(leak.env), isolation: { uid_range: uidRangeKey(UID_RANGE) } },
    hostnet: {
      ...hostilePool(leak.env),
      isolation: { uid_range: uidRangeKey(UID_RANGE), network: "host" },
    },
    boxed: hostilePool(leak.env, {
      user: "auto",
      uid_range: uidRangeKey(UID_RANGE),
      filesystem: "private",
      network: "private",
    }),
    none: { ...hostilePool(leak.env), isolation: "none" },
    claims: { ...hostilePool(leak.env), isolation: { uid_range: uidRangeKey(ONE_UID) } },
  },
});

beforeAll(async () => {
  const env = { ...leak.env, HERD_TOKEN: TOKEN };
  daemon = await startDaemon({ config: config(SOCKET), env });
  twin = await startDaemon({ config: config(), env });
}, 90_000);

afterAll(async () => {
  rmSync(DIST_FILE, { force: true });
  const pids = [daemon?.pid ?? 0, twin?.pid ?? 0];
  const exits = await Promise.all([daemon?.stop(), twin?.stop()]);
  try {
    await expectNoLeaks(leak.tag);
    for (const pid of pids) {
      await expectNoIsolationLeaks(UID_RANGE, pid);
      await expectNoIsolationLeaks(ONE_UID, pid);
    }
  } finally {
    killAllWithTag(leak.tag);
  }
  expect(exits).toEqual([
    { code: 0, signal: null },
    { code: 0, signal: null },
  ]);
}, 90_000);

/** [pool, session, does the attack work]: contained pools stop it, `none` documents it. */
const attackers = [
  ["plain", "plain-attacker", false],
  ["boxed", "boxed-attacker", false],
  ["none", "none-attacker", true],
] as const;

describe("attack 1: a worker of a root daemon", () => {
  it.each(attackers)("%s: runs as root or not", async (pool, session, works) => {
    const id = await ask(daemon, pool, session, "/id");
    expect(id.uid === 0).toBe(works);
  });

  it.each(attackers)("%s: writes the daemon's dist/", async (pool, session, works) => {
    const r = await ask(daemon, pool, session, `/write?path=${DIST_FILE}&text=pwned`);
    expect(r.ok).toBe(works);
    rmSync(DIST_FILE, { force: true });
  });

  it.each(attackers)("%s: signals the daemon", async (pool, session, works) => {
    expect((await ask(daemon, pool, session, `/signal?pid=${daemon.pid}&sig=0`)).ok).toBe(works);
  });

  it.each(attackers)(
    "%s: never reads the control token in the daemon's environ",
    async (pool, session, works) => {
      const r = await ask(daemon, pool, session, `/read?path=/proc/${daemon.pid}/environ`);
      // `none` reads the file (same uid, same PID namespace), but the token is gone from it.
      expect(r.ok).toBe(works);
      if (r.ok) expect(String(r.content)).toContain(leak.tag);
      expect(String(r.content ?? "")).not.toContain(TOKEN);
    },
  );

  it.each(attackers)("%s: reaches the control socket", async (pool, session, works) => {
    const r = await ask(daemon, pool, session, `/connect?path=${encodeURIComponent(SOCKET)}`);
    expect(r.ok).toBe(works);
  });
});

describe("attack 3: a worker on the host's network and the tokenless loopback control plane", () => {
  it.each([...attackers, ["hostnet", "hostnet-attacker", false] as const])(
    "%s: lists every session with its token",
    async (pool, session, works) => {
      await ask(twin, pool, session, "/id");
      const url = encodeURIComponent(`${twin.controlUrl}/herd.v1.HerdService/ListSessions`);
      const r = await ask(twin, pool, session, `/post?url=${url}&body={}`);
      // `boxed` and `plain` (egress) have a network of their own that never reaches the host;
      // `hostnet` shares the host's and is refused by uid.
      expect(r.ok && r.status === 200 && String(r.body).includes('"token"')).toBe(works);
      if (pool === "hostnet") {
        expect(twin.stdout()).toContain("control plane: refused a loopback client running as uid");
      }
    },
  );

  it("says at start what a worker on the host's network reaches", () => {
    expect(twin.stdout()).toMatch(
      /pool hostnet: network: host \(weakened by the config\): a worker shares the host's network: it reaches every loopback listener/,
    );
  });
});

describe("attack 9: the kernel surface", () => {
  it.each(attackers)(
    "%s: makes a user namespace with unshare -Ur",
    async (pool, session, works) => {
      const argv = encodeURIComponent(JSON.stringify(["unshare", "-Ur", "id", "-u"]));
      const r = await ask(daemon, pool, session, `/run?argv=${argv}`);
      expect(r.ok).toBe(works);
    },
  );

  it.each(attackers.slice(0, 2))(
    "%s: gets private, bounded /tmp, /var/tmp, /dev/shm and /run/lock",
    async (pool, session) => {
      for (const dir of ["/tmp", "/var/tmp", "/dev/shm"]) {
        const r = await ask(daemon, pool, session, `/statfs?path=${dir}`);
        expect(r.bytes, dir).toBeLessThanOrEqual(2 ** 30);
      }
      for (const dir of ["/var/tmp", "/run/lock"]) {
        const file = `${dir}/herd-${leak.tag}-${pool}`;
        expect((await ask(daemon, pool, session, `/write?path=${file}&text=x`)).ok).toBe(true);
        expect(readdirSync(dir)).not.toContain(`herd-${leak.tag}-${pool}`);
      }
    },
  );
});

describe("attack 6: two daemons with one uid_range", () => {
  it("never give two live workers the same uid: the second waits for a free one", async () => {
    expect((await ask(daemon, "claims", "claim-a", "/id")).uid).toBe(ONE_UID[0]);
    // The first daemon's worker holds the range's only uid: the twin cannot start one.
    await expect(ask(twin, "claims", "claim-b", "/id")).rejects.toThrow(
      /uid_range 232100-232100: all 1 uids are in use by live workers \(of this daemon or another on the host\)/,
    );
  });

  it("different uids for the live workers of two daemons sharing a wide range", async () => {
    const uids = [
      (await ask(daemon, "plain", "claim-a", "/id")).uid,
      (await ask(twin, "plain", "claim-b", "/id")).uid,
    ];
    expect(new Set(uids).size).toBe(2);
  });
});

describe("the report of what each pool got", () => {
  it("logs per pool what it got, and loudly what the config weakened and what that reaches", () => {
    const log = daemon.stdout() + daemon.stderr();
    expect(log).toContain(
      "pool plain containment: user: auto (a uid of its own from 232000-232019); filesystem: private",
    );
    expect(log).toContain(
      "pool none: user: inherit (weakened by the config): a worker runs as root, beside the daemon",
    );
    expect(log).toMatch(
      /pool none: kernel: host \(weakened by the config\): no sandbox: a worker can create user namespaces/,
    );
    // network unset: egress, the best this (root) host gives.
    expect(log).toMatch(
      /pool plain containment: .*; network: egress \(own namespace, out to the internet only/,
    );
    expect(log).toMatch(
      /pool hostnet: network: host \(weakened by the config\): a worker shares the host's network: it reaches every loopback listener \(the data plane/,
    );
  });

  it("shows it in GetStats", async () => {
    const res = await fetch(`${daemon.controlUrl}/herd.v1.HerdService/GetStats`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}` },
      body: "{}",
    });
    const stats = (await res.json()) as {
      pools: { name: string; containment: { key: string; state: string }[] }[];
    };
    const states = Object.fromEntries(
      stats.pools.map((p) => [
        p.name,
        Object.fromEntries(p.containment.map((c) => [c.key, c.state])),
      ]),
    );
    expect(states.plain).toMatchObject({
      user: "full",
      filesystem: "full",
      network: "full",
      kernel: "full",
    });
    expect(states.hostnet).toMatchObject({ network: "weakened" });
    expect(states.none).toMatchObject({
      user: "weakened",
      filesystem: "weakened",
      network: "weakened",
      kernel: "weakened",
    });
  });

  it("shows it in herd status", async () => {
    const r = await runCaptured(process.execPath, [HERD_BIN, "status", "--addr", twin.controlUrl]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(
      "plain containment: user: auto (a uid of its own from 232000-232019)",
    );
    expect(r.stdout).toMatch(/ {2}user weakened: a worker runs as root, beside the daemon/);
  });
});
