// Tenant isolation (issue 9, items 3 and 4): a hostile worker tries, from the inside, to reach
// what it must not. Each attempt is made twice — from a pool with isolation off, where it
// WORKS today (documenting the attack), and from a pool with `user: auto, network: private,
// filesystem: private`, where it must fail. Real daemon, real processes, real sockets.

import { rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Daemon, newLeakTag, startDaemon } from "../helpers/index.ts";
import {
  ask,
  hostilePool,
  relaySockets,
  stopContained,
  type UidRange,
  uidRangeKey,
} from "./isolation-harness.ts";

const leak = newLeakTag();
const UID_RANGE: UidRange = [230_000, 230_999];
const ISOLATED = {
  user: "auto",
  uid_range: uidRangeKey(UID_RANGE),
  network: "private",
  filesystem: "private",
};
let daemon: Daemon;
let hostListener: Server;
let hostPort: number;

beforeAll(async () => {
  hostListener = createServer((s) => {
    s.on("error", () => {});
    s.end("host secret\n");
  });
  await new Promise<void>((r) => hostListener.listen(0, "127.0.0.1", r));
  hostPort = (hostListener.address() as { port: number }).port;
  daemon = await startDaemon({
    config: {
      workers: {
        // The explicit opt-out: where each attack still works.
        open: hostilePool(leak.env, "none"),
        boxed: hostilePool(leak.env, ISOLATED),
        // Own uids on the host's filesystem: only file permissions stand between them.
        uids: hostilePool(leak.env, {
          user: "auto",
          uid_range: uidRangeKey(UID_RANGE),
          network: "private",
          filesystem: "host",
        }),
      },
    },
    env: leak.env,
  });
}, 60_000);

afterAll(async () => {
  hostListener?.close();
  rmSync(`/tmp/herd-secret-${leak.tag}-open`, { force: true });
  const exit = await stopContained(daemon, leak.tag, UID_RANGE);
  expect(exit).toEqual({ code: 0, signal: null });
}, 60_000);

const port = (url: string) => Number(new URL(url).port);
/** [pool, attacker session]: the same attack from both pools. */
const attackers = [
  ["open", "open-attacker", true],
  ["boxed", "boxed-attacker", false],
] as const;

describe("a worker with isolation off can, and with user: auto + network/filesystem: private cannot", () => {
  it.each(attackers)("%s: connect to the control plane", async (pool, session, works) => {
    const r = await ask(daemon, pool, session, `/connect?port=${port(daemon.controlUrl)}`);
    expect(r.ok).toBe(works);
  });

  it.each(attackers)("%s: connect to the data plane", async (pool, session, works) => {
    const r = await ask(daemon, pool, session, `/connect?port=${port(daemon.dataUrl)}`);
    expect(r.ok).toBe(works);
  });

  it.each(attackers)("%s: connect to a host loopback listener", async (pool, session, works) => {
    const r = await ask(daemon, pool, session, `/connect?port=${hostPort}`);
    expect(r.ok).toBe(works);
  });

  it.each(attackers)(
    "%s: connect straight to another worker's port",
    async (pool, session, works) => {
      const victim = await ask(daemon, "open", "open-victim", "/id");
      const r = await ask(daemon, pool, session, `/connect?port=${victim.port}`);
      expect(r.ok).toBe(works);
    },
  );

  it.each(attackers)("%s: signal another worker and the daemon", async (pool, session, works) => {
    const victim = await ask(daemon, "open", "open-victim", "/id");
    expect((await ask(daemon, pool, session, `/signal?pid=${victim.pid}&sig=0`)).ok).toBe(works);
    expect((await ask(daemon, pool, session, `/signal?pid=${daemon.pid}&sig=0`)).ok).toBe(works);
  });

  it.each(attackers)(
    "%s: read the daemon's config file and environment",
    async (pool, session, works) => {
      const config = await ask(daemon, pool, session, `/read?path=${daemon.configFile}`);
      expect(config.ok && String(config.content).includes("workers")).toBe(works);
      const environ = await ask(daemon, pool, session, `/read?path=/proc/${daemon.pid}/environ`);
      expect(environ.ok && String(environ.content).includes(leak.tag)).toBe(works);
    },
  );

  it.each(attackers)(
    "%s: read another worker's private /tmp file",
    async (pool, session, works) => {
      const victim = `${pool}-victim`;
      const secret = `/tmp/herd-secret-${leak.tag}-${pool}`;
      expect((await ask(daemon, pool, victim, `/write?path=${secret}&text=s3cret`)).ok).toBe(true);
      const r = await ask(daemon, pool, session, `/read?path=${secret}`);
      expect(r.ok && r.content === "s3cret").toBe(works);
    },
  );
});

describe("what an isolated worker gets", () => {
  it("is said once per pool when the daemon starts", () => {
    const log = daemon.stdout() + daemon.stderr();
    expect(log).toContain("pool open containment: user: inherit; filesystem: host; network: host");
    expect(log).toContain(
      "pool boxed containment: user: auto (a uid of its own from 230000-230999); filesystem: private",
    );
  });

  it("runs under a uid of its own from the range, different for each live worker", async () => {
    const a = await ask(daemon, "boxed", "boxed-attacker", "/id");
    const b = await ask(daemon, "boxed", "boxed-victim", "/id");
    for (const id of [a, b]) {
      expect(id.uid).toBeGreaterThanOrEqual(UID_RANGE[0]);
      expect(id.uid).toBeLessThanOrEqual(UID_RANGE[1]);
      expect(id.gid).toBe(id.uid);
    }
    expect(a.uid).not.toBe(b.uid);
    const open = await ask(daemon, "open", "open-attacker", "/id");
    expect(open.uid).toBe(process.getuid?.());
  });

  it("with user: auto on the host's /tmp, cannot read another worker's private file", async () => {
    const secret = `/tmp/herd-secret-${leak.tag}-uids`;
    expect((await ask(daemon, "uids", "uids-victim", `/write?path=${secret}&text=s3cret`)).ok).toBe(
      true,
    );
    const r = await ask(daemon, "uids", "uids-attacker", `/read?path=${secret}`);
    expect(r).toMatchObject({ ok: false, error: "EACCES" });
    rmSync(secret, { force: true });
  });

  it("writes /tmp and HOME privately: nothing it writes appears on the host", async () => {
    const id = await ask(daemon, "boxed", "boxed-attacker", "/id");
    const file = `/tmp/herd-private-${leak.tag}`;
    expect((await ask(daemon, "boxed", "boxed-attacker", `/write?path=${file}`)).ok).toBe(true);
    expect((await ask(daemon, "boxed", "boxed-attacker", `/write?path=${id.home}/x`)).ok).toBe(
      true,
    );
    const { existsSync } = await import("node:fs");
    expect(existsSync(file)).toBe(false);
  });

  it("cannot reach another worker's relay socket, though the data plane does", async () => {
    await ask(daemon, "boxed", "boxed-victim", "/id");
    const sockets = relaySockets(daemon.pid);
    expect(sockets.length).toBeGreaterThanOrEqual(2);
    for (const path of sockets) {
      const q = `/connect?path=${encodeURIComponent(path)}`;
      expect((await ask(daemon, "boxed", "boxed-attacker", q)).ok).toBe(false);
    }
    expect((await ask(daemon, "boxed", "boxed-victim", "/id")).uid).toBeGreaterThanOrEqual(
      UID_RANGE[0],
    );
  });
});
