// `herd restart` of a node whose data plane relays a client connection to another node (the relay
// hop, src/dataplane/relay-hop.ts), with two real nodes on a real redis-server. As with a
// WebSocket tunnel on the native relay, the old process keeps the relayed connection and serves
// it on until it closes, then exits; the new process relays new connections. No process of
// either generation is left.

import { Agent, request } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { startCluster, type TestCluster } from "../cluster/cluster-harness.ts";
import { spawnCaptured } from "../helpers/captured.ts";
import { type Daemon, HERD_BIN } from "../helpers/daemon.ts";
import { pidAlive } from "../helpers/processes.ts";
import { daemonPids, stopClusterGenerations, until } from "./restart-helpers.ts";

/** The client's address: not the nodes', so X-Forwarded-For shows whether a node forwarded. */
const CLIENT = "127.0.0.2";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function twoNodes(): Promise<TestCluster> {
  const c = await startCluster([{ node: "a" }, { node: "b", config: { drain_timeout: "30s" } }]);
  cleanups.push(() => stopClusterGenerations(c));
  return c;
}

function echo(
  d: Daemon,
  agent: Agent,
): Promise<{ status: number; reused: boolean; pid: number; forwardedFor: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${d.dataUrl}/s/s1/echo`, { agent, localAddress: CLIENT }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        body += chunk;
      });
      res.on("end", () => {
        const seen = JSON.parse(body) as { pid: number; headers: Record<string, string> };
        resolve({
          status: res.statusCode ?? 0,
          reused: req.reusedSocket,
          pid: seen.pid,
          forwardedFor: seen.headers["x-forwarded-for"] ?? "",
        });
      });
    });
    req.on("error", reject);
    req.end();
  });
}

describe("herd restart of a node with a relay hop open", () => {
  it("the old process keeps the relayed connection until it closes; the new one relays new ones", async () => {
    const c = await twoNodes();
    const [a, b] = c.nodes as [Daemon, Daemon];
    const { session } = await c.client(a).acquireSession({ pool: "w", sessionId: "s1" });
    await until("b knows s1", async () =>
      (await c.client(b).listSessions({})).sessions.some((s) => s.sessionId === "s1")
        ? true
        : undefined,
    );
    const kept = new Agent({ keepAlive: true, maxSockets: 1 });
    cleanups.push(async () => kept.destroy());
    for (let i = 0; i < 3; i++) {
      const r = await echo(b, kept);
      expect(r.status).toBe(200);
      expect(r.pid).toBe(session!.workerPid);
      // The first forwarded one hop (b's address added), then relayed: the client alone.
      expect(r.forwardedFor).toBe(i === 0 ? `${CLIENT}, 127.0.0.1` : CLIENT);
    }

    const run = spawnCaptured(process.execPath, [HERD_BIN, "restart", "--addr", b.controlUrl]);
    expect((await run.exited).code, run.stderr()).toBe(0);
    const successor = daemonPids(c.leak.tag).find((pid) => pid !== a.pid && pid !== b.pid);
    expect(successor).toBeDefined();

    // The relayed connection lives on in the old process, which stays for it.
    for (let i = 0; i < 3; i++) {
      const r = await echo(b, kept);
      expect(r.status).toBe(200);
      expect(r.reused).toBe(true);
      expect(r.pid).toBe(session!.workerPid);
      expect(r.forwardedFor).toBe(CLIENT);
    }
    expect(pidAlive(b.pid)).toBe(true);
    kept.destroy();
    await until("the old process exits once its relayed connection closed", () =>
      pidAlive(b.pid) ? undefined : true,
    );

    // The new process relays a new connection.
    const fresh = new Agent({ keepAlive: true, maxSockets: 1 });
    cleanups.push(async () => fresh.destroy());
    for (let i = 0; i < 3; i++) {
      const r = await echo(b, fresh);
      expect(r.status).toBe(200);
      expect(r.pid).toBe(session!.workerPid);
      expect(r.forwardedFor).toBe(i === 0 ? `${CLIENT}, 127.0.0.1` : CLIENT);
    }
    fresh.destroy();
  });
});
