// Draining a node (issue 25): SIGTERM or `herd drain` — no new sessions, the live ones served
// until they end or drain_timeout passes, then the daemon stops (a cluster node leaves its
// cluster at once). On one node and in a cluster. Every test proves its processes are gone.

import { spawn, spawnSync } from "node:child_process";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { createClient as createRedis } from "redis";
import { afterEach, describe, expect, it } from "vitest";
import { HerdService } from "../../gen/herd/v1/herd_pb.ts";
import { type Daemon, HERD_BIN, startDaemon } from "../helpers/daemon.ts";
import { eventually } from "../helpers/herd.ts";
import { expectNoLeaks, newLeakTag, pidAlive } from "../helpers/processes.ts";
import { startCluster, type TestCluster, workerPool } from "./cluster-harness.ts";

let cluster: TestCluster | undefined;
const daemons: Daemon[] = [];
const leak = newLeakTag();
afterEach(async () => {
  await cluster?.cleanup();
  cluster = undefined;
  for (const d of daemons.splice(0)) await d.kill();
  await expectNoLeaks(leak.tag);
});

function client(d: Daemon) {
  return createClient(
    HerdService,
    createConnectTransport({ baseUrl: d.controlUrl, httpVersion: "1.1" }),
  );
}

async function whoami(d: Daemon, id: string) {
  const res = await fetch(`${d.dataUrl}/whoami`, { headers: { "X-Session-ID": id } });
  return { status: res.status, body: (await res.json()) as { pid?: number; message?: string } };
}

function cli(...args: string[]) {
  return spawnSync(process.execPath, [HERD_BIN, ...args], { encoding: "utf8" });
}

async function single(drainTimeout: string): Promise<Daemon> {
  const d = await startDaemon({
    config: { drain_timeout: drainTimeout, workers: { w: workerPool() } },
    env: leak.env,
  });
  daemons.push(d);
  return d;
}

describe("drain, one node", () => {
  it("SIGTERM: no new sessions (UNAVAILABLE draining, 503), live ones served, stops once they end", async () => {
    const d = await single("60s");
    const herd = client(d);
    const { session } = await herd.acquireSession({ pool: "w", sessionId: "live" });
    d.child.kill("SIGTERM");
    await eventually("the daemon drains", async () => {
      const st = cli("status", "--addr", d.controlUrl);
      return /DRAINING/.test(st.stdout) ? true : undefined;
    });
    const refused = await herd
      .acquireSession({ pool: "w", sessionId: "new" })
      .catch((e: unknown) => ConnectError.from(e));
    expect((refused as ConnectError).code).toBe(Code.Unavailable);
    expect((refused as ConnectError).rawMessage).toMatch(/draining/);
    const viaData = await whoami(d, "new-on-data-plane");
    expect(viaData.status).toBe(503);
    expect(viaData.body.message).toMatch(/draining/);
    // The live session is served as before, and acquiring it again is no new session.
    expect(await whoami(d, "live")).toMatchObject({
      status: 200,
      body: { pid: session!.workerPid },
    });
    expect((await herd.acquireSession({ pool: "w", sessionId: "live" })).session?.workerPid).toBe(
      session!.workerPid,
    );
    // It ends on its own (the client releases it): the daemon stops cleanly, long before 60 s.
    const releasedAt = Date.now();
    await herd.releaseSession({ sessionId: "live" });
    const exit = await d.exited;
    expect(exit.code).toBe(0);
    expect(Date.now() - releasedAt).toBeLessThan(30_000);
    expect(d.stdout()).toMatch(/drained: no live session left/);
  });

  it("drain_timeout bounds the wait; a second SIGTERM, or SIGINT, stops at once", async () => {
    const bounded = await single("1s");
    const { session } = await client(bounded).acquireSession({ pool: "w", sessionId: "stays" });
    bounded.child.kill("SIGTERM");
    expect((await bounded.exited).code).toBe(0);
    expect(bounded.stdout()).toMatch(/drain_timeout passed: stopping with live sessions/);
    await eventually("its worker is gone", () => !pidAlive(session!.workerPid));

    const twice = await single("60s");
    const held = await client(twice).acquireSession({ pool: "w", sessionId: "stays" });
    twice.child.kill("SIGTERM");
    await eventually("draining", () =>
      /draining: no new sessions/.test(twice.stdout()) ? true : undefined,
    );
    const secondAt = Date.now();
    twice.child.kill("SIGTERM");
    expect((await twice.exited).code).toBe(0);
    expect(Date.now() - secondAt).toBeLessThan(15_000);
    expect(twice.stdout()).toMatch(/second signal: stopping now/);
    await eventually("its worker is gone", () => !pidAlive(held.session!.workerPid));

    // Ctrl-C at a terminal is "now": no drain.
    const interrupted = await single("60s");
    await client(interrupted).acquireSession({ pool: "w", sessionId: "stays" });
    const sigintAt = Date.now();
    interrupted.child.kill("SIGINT");
    expect((await interrupted.exited).code).toBe(0);
    expect(Date.now() - sigintAt).toBeLessThan(15_000);
    expect(interrupted.stdout()).toMatch(/SIGINT: stopping now/);
  });

  it("`herd drain` drains over the control plane and waits until the daemon has stopped", async () => {
    const d = await single("60s");
    const herd = client(d);
    await herd.acquireSession({ pool: "w", sessionId: "live" });
    const run = spawn(process.execPath, [HERD_BIN, "drain", "--addr", d.controlUrl], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    run.stdout.on("data", (c: Buffer) => {
      out += c;
    });
    const ran = new Promise<number | null>((r) => run.once("exit", (code) => r(code)));
    await eventually("draining", () => (/draining: 1 live session/.test(out) ? true : undefined));
    // Still running: it waits for the daemon.
    expect(run.exitCode).toBeNull();
    await herd.releaseSession({ sessionId: "live" });
    expect(await ran).toBe(0);
    expect(out).toMatch(/stopped/);
    expect((await d.exited).code).toBe(0);
  });
});

describe("drain, cluster", () => {
  it("a draining node takes no new sessions (placed elsewhere), still forwards, serves its own, then leaves", async () => {
    cluster = await startCluster(
      ["a", "b"].map((n) => ({
        node: `node-${n}`,
        config: { drain_timeout: "60s" },
        pools: { w: workerPool({ max: 4 }) },
      })),
    );
    const c = cluster;
    const [a, b] = c.nodes as [Daemon, Daemon];
    const mine = (await c.client(a).acquireSession({ pool: "w", sessionId: "on-a" })).session!;
    const theirs = (await c.client(b).acquireSession({ pool: "w", sessionId: "on-b" })).session!;
    expect([mine.node, theirs.node]).toEqual(["node-a", "node-b"]);
    const drained = cli("drain", "--no-wait", "--addr", a.controlUrl);
    expect(drained.status, drained.stderr).toBe(0);
    expect(drained.stdout).toMatch(/draining: 1 live session/);
    // Every node shows it draining at once (the record is renewed on the spot).
    await eventually("b shows a DRAINING", () =>
      /node-a\s+DRAINING/.test(cli("cluster", "status", "--addr", b.controlUrl).stdout)
        ? true
        : undefined,
    );
    // New sessions asked of a go to b: control plane and data plane alike.
    const placed = await c.client(a).acquireSession({ pool: "w", sessionId: "new-1" });
    expect(placed.session?.node).toBe("node-b");
    const auto = await whoami(a, "new-2");
    expect(auto.status).toBe(200);
    const list = await c.client(b).listSessions({});
    expect(list.sessions.find((s) => s.sessionId === "new-2")?.node).toBe("node-b");
    // a still forwards to b's sessions and serves its own.
    expect((await whoami(a, "on-b")).body.pid).toBe(theirs.workerPid);
    expect((await whoami(a, "on-a")).body.pid).toBe(mine.workerPid);
    // Its last session ends: a stops, and leaves (its record is removed, not left to expire).
    await c.client(b).releaseSession({ sessionId: "on-a" });
    expect((await a.exited).code).toBe(0);
    const r = createRedis({ url: c.redis.url });
    r.on("error", () => {});
    await r.connect();
    try {
      expect(await r.exists("herd:alive:node-a")).toBe(0);
      expect(Number(await r.sIsMember("herd:members", "node-a"))).toBe(0);
    } finally {
      r.destroy();
    }
    expect(a.stdout()).not.toMatch(/events not shared/);
    // b drains too at cleanup (SIGTERM): with nothing live it stops at once.
    for (const id of ["on-b", "new-1", "new-2"])
      await c.client(b).releaseSession({ sessionId: id });
  });
});
