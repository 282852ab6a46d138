// The cluster's trust boundary (issue 25): a writer of Redis without the cluster secret cannot
// redirect traffic, and a captured node-to-node credential replays nowhere. Real daemons, a
// real redis-server (ACL user and password), and "attacker" listeners on loopback and on a
// Unix socket that must never see a connection.

import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { Agent, request } from "node:http";
import { connect, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { type Client, Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { createClient as createRedis } from "redis";
import { afterEach, describe, expect, it } from "vitest";
import { HerdService } from "../../gen/herd/v1/herd_pb.ts";
import { PeerAuth } from "../../src/cluster/index.ts";
import type { Daemon } from "../helpers/daemon.ts";
import { eventually } from "../helpers/herd.ts";
import { freePort } from "../helpers/ports.ts";
import { pidAlive } from "../helpers/processes.ts";
import { SECRET, startCluster, type TestCluster } from "./cluster-harness.ts";

const CONTROL_TOKEN = "control-token-of-the-operator-0123";
/** Longer than the credentials' clock-skew allowance (10 s). */
const PAST_THE_WINDOW_MS = 11_000;

let cluster: TestCluster | undefined;
const closers: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
  await cluster?.cleanup();
  cluster = undefined;
});

/** A listener that records every connection made to it and answers nothing. */
function attacker(server: Server): { connections: Socket[]; heads: string[] } {
  const seen = { connections: [] as Socket[], heads: [] as string[] };
  server.on("connection", (s) => {
    seen.connections.push(s);
    s.on("data", (d) => seen.heads.push(d.toString("latin1")));
    s.on("error", () => {});
    setTimeout(() => s.destroy(), 200);
  });
  closers.push(() => new Promise<void>((r) => server.close(() => r())));
  return seen;
}

async function tcpAttacker(): Promise<{ address: string; seen: ReturnType<typeof attacker> }> {
  const server = createServer();
  const seen = attacker(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  return { address: `127.0.0.1:${port}`, seen };
}

async function redisOf(c: TestCluster) {
  const r = createRedis({ url: c.redis.url });
  r.on("error", () => {});
  await r.connect();
  closers.push(() => void r.destroy());
  return r;
}

/** A session record as an older herd wrote it (plain JSON, token in the clear), forged. */
function forgedInfo(id: string, address: string): string {
  const now = new Date().toISOString();
  return JSON.stringify({
    id,
    pool: "w",
    workerId: "w-forged",
    workerPid: 1,
    workerAddress: "",
    token: "forged-token",
    createdAt: now,
    lastActiveAt: now,
    connections: 0,
    labels: {},
    node: "node-b",
    data: address,
    control: address,
  });
}

function authed(d: Daemon, headers: Record<string, string> = {}): Client<typeof HerdService> {
  return createClient(
    HerdService,
    createConnectTransport({
      baseUrl: d.controlUrl,
      httpVersion: "1.1",
      interceptors: [
        (next) => (req) => {
          for (const [k, v] of Object.entries(headers)) req.header.set(k, v);
          return next(req);
        },
      ],
    }),
  );
}

async function code(p: Promise<unknown>): Promise<Code | "ok"> {
  return p.then(
    () => "ok" as const,
    (e: unknown) => ConnectError.from(e).code,
  );
}

describe("cluster trust: records written to Redis without the secret", () => {
  it("a forged session record or stream event (data and control at an attacker) is never followed", async () => {
    cluster = await startCluster([{ node: "node-a" }, { node: "node-b" }]);
    const [a, b] = cluster.nodes as [Daemon, Daemon];
    const evil = await tcpAttacker();
    const r = await redisOf(cluster);
    await r.hSet("herd:s:forged", {
      node: "node-b",
      gen: "999",
      pool: "w",
      state: "ready",
      info: forgedInfo("forged", evil.address),
    });
    // The data plane (a cluster-wide find), Release and Acquire of the id through node a.
    const res = await fetch(`${a.dataUrl}/s/forged/whoami`, {
      headers: { "X-Herd-Token": "forged-token" },
    });
    expect(res.status).toBeGreaterThanOrEqual(400);
    await res.body?.cancel();
    expect(await code(cluster.client(a).releaseSession({ sessionId: "forged" }))).not.toBe("ok");
    await code(cluster.client(a).acquireSession({ pool: "w", sessionId: "forged" }));
    // The same session announced on the event stream, as the next revision.
    const rev = await r.incr("herd:rev");
    await r.xAdd("herd:events", `${rev}-0`, {
      e: JSON.stringify({
        type: "session_acquired",
        node: "node-b",
        pool: "w",
        sessionId: "streamed",
        time: new Date().toISOString(),
        session: forgedInfo("streamed", evil.address),
      }),
    });
    // A genuine session announced after it: once node a lists that one, it has read the forged
    // entry too (one stream, read in order).
    await cluster.client(b).acquireSession({ pool: "w", sessionId: "after" });
    await eventually("a has read the stream past the forged entry", async () =>
      (await cluster!.client(a).listSessions({})).sessions.some((x) => x.sessionId === "after")
        ? true
        : undefined,
    );
    // Node a does not know the id, so (auto_acquire) it may start a session of its own for it:
    // what matters is that nothing goes to the stream's address.
    const streamed = await fetch(`${a.dataUrl}/s/streamed/whoami`, {
      headers: { "X-Herd-Token": "forged-token" },
    });
    await streamed.body?.cancel();
    const listed = await cluster.client(a).listSessions({});
    for (const x of listed.sessions.filter((x) => x.sessionId === "streamed")) {
      expect(x.node).toBe("node-a");
    }
    await sleep(300);
    expect(evil.seen.heads.join("")).not.toMatch(/x-herd-peer/i);
    expect(evil.seen.connections).toHaveLength(0);
  });

  it("a `unix:` address in a session record is never connected to", async () => {
    cluster = await startCluster([{ node: "node-a" }, { node: "node-b" }]);
    const [a] = cluster.nodes as [Daemon, Daemon];
    const dir = mkdtempSync(join(tmpdir(), "herd-trust-relay-"));
    closers.push(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, "http.sock");
    const server = createServer();
    const seen = attacker(server);
    await new Promise<void>((r) => server.listen(path, r));
    const r = await redisOf(cluster);
    await r.hSet("herd:s:viaunix", {
      node: "node-b",
      gen: "999",
      pool: "w",
      state: "ready",
      info: forgedInfo("viaunix", `unix:${path}`),
    });
    const res = await fetch(`${a.dataUrl}/s/viaunix/run?cmd=id`, {
      headers: { "X-Herd-Token": "forged-token" },
    });
    expect(res.status).toBeGreaterThanOrEqual(400);
    await res.body?.cancel();
    await sleep(300);
    expect(seen.connections).toHaveLength(0);
  });

  it("a fake node record offering a pool receives no forwarded AcquireSession", async () => {
    cluster = await startCluster([{ node: "node-a" }, { node: "node-b" }]);
    const [a] = cluster.nodes as [Daemon, Daemon];
    const evil = await tcpAttacker();
    const r = await redisOf(cluster);
    const pool = { free: 100, queued: 0, max: 100 };
    await r.set(
      "herd:alive:evil",
      JSON.stringify({
        node: "evil",
        data: evil.address,
        control: evil.address,
        pools: { w: pool, x: pool },
        stats: [],
        renewedAt: Date.now(),
        leaseMs: 60_000,
      }),
      { PX: 60_000 },
    );
    await r.sAdd("herd:members", "evil");
    // Pool x runs nowhere genuine: only the fake node offers it.
    const placed = await code(
      cluster.client(a).acquireSession({ pool: "x", sessionId: "to-evil" }),
    );
    expect(placed).not.toBe("ok");
    // GetStats does not list it either.
    const stats = await cluster.client(a).getStats({});
    expect(stats.clusterNodes.map((n) => n.node)).not.toContain("evil");
    await sleep(300);
    expect(evil.seen.connections).toHaveLength(0);
  });
});

describe("cluster trust: a node-to-node credential is good for one request", () => {
  it("a captured X-Herd-Peer replays to no node, method or body, and not after the window", async () => {
    // b's control plane is advertised at a relay that shows (and can drop) what a sends it.
    const relay = await startRelay();
    const control = { token: CONTROL_TOKEN };
    cluster = await startCluster([
      { node: "node-a", control },
      { node: "node-b", control, advertise: { control: `127.0.0.1:${relay.port}` } },
      { node: "node-c", control },
    ]);
    const [a, b, c] = cluster.nodes as [Daemon, Daemon, Daemon];
    relay.target = Number(new URL(b.controlUrl).port);
    const bearer = { authorization: `Bearer ${CONTROL_TOKEN}` };
    const onB = authed(b, bearer);
    const v1 = (await onB.acquireSession({ pool: "w", sessionId: "v1" })).session!;
    const v2 = (await onB.acquireSession({ pool: "w", sessionId: "v2" })).session!;
    expect(v1.node).toBe("node-b");
    await eventually("a knows b's sessions", async () => {
      const list = await authed(a, bearer).listSessions({});
      return list.sessions.filter((s) => s.node === "node-b").length === 2 || undefined;
    });

    // 1. A credential captured and never delivered (the relay drops the call).
    relay.mode = "drop";
    expect(await code(authed(a, bearer).releaseSession({ sessionId: "v1" }))).not.toBe("ok");
    const undelivered = relay.captured.at(-1);
    expect(undelivered).toBeDefined();
    const droppedAt = Date.now();

    // 2. A genuine forwarded call, captured on its way: it works once.
    relay.mode = "pass";
    const released = await authed(a, bearer).releaseSession({ sessionId: "v1" });
    expect(released.session?.node).toBe("node-b");
    const used = relay.captured.at(-1)!;
    expect(used).not.toBe(undelivered);

    // Replays of it, without the bearer token: the same call again, another body (kill v2),
    // another method, another node.
    const peer = (d: Daemon, cred: string) => authed(d, { "x-herd-peer": cred });
    expect(await code(peer(b, used).releaseSession({ sessionId: "v1" }))).toBe(
      Code.Unauthenticated,
    );
    expect(await code(peer(b, used).releaseSession({ sessionId: "v2", kill: true }))).toBe(
      Code.Unauthenticated,
    );
    expect(await code(peer(b, used).getStats({}))).toBe(Code.Unauthenticated);
    expect(await code(peer(c, used).listSessions({}))).toBe(Code.Unauthenticated);
    expect(await code(peer(a, used).listSessions({}))).toBe(Code.Unauthenticated);
    expect(pidAlive(v2.workerPid)).toBe(true);

    // 3. The undelivered one, past the window: refused too.
    await sleep(Math.max(0, droppedAt + PAST_THE_WINDOW_MS - Date.now()));
    expect(await code(peer(b, undelivered!).releaseSession({ sessionId: "v1" }))).toBe(
      Code.Unauthenticated,
    );
    expect(await code(peer(b, undelivered!).releaseSession({ sessionId: "v2", kill: true }))).toBe(
      Code.Unauthenticated,
    );
    expect(pidAlive(v2.workerPid)).toBe(true);
    // The genuine path still works.
    expect((await authed(a, bearer).releaseSession({ sessionId: "v2" })).session?.node).toBe(
      "node-b",
    );
  }, 90_000);
});

/** A TCP relay to 127.0.0.1:`target` that records each connection's X-Herd-Peer. */
async function startRelay(): Promise<{
  port: number;
  target: number;
  mode: "drop" | "pass";
  captured: string[];
}> {
  const state = { port: 0, target: 0, mode: "pass" as "drop" | "pass", captured: [] as string[] };
  const relay = createServer((client) => {
    client.on("error", () => {});
    client.once("data", (first) => {
      const m = /\r\nx-herd-peer: *([^\r\n]+)/i.exec(first.toString("latin1"));
      if (m) state.captured.push(m[1]!);
      if (state.mode === "drop") {
        client.destroy();
        return;
      }
      createConnection(state.target, client).write(first);
    });
  });
  await new Promise<void>((r) => relay.listen(0, "127.0.0.1", r));
  state.port = (relay.address() as { port: number }).port;
  closers.push(() => new Promise<void>((r) => relay.close(() => r())));
  return state;
}

function createConnection(port: number, client: Socket): Socket {
  const upstream = connect(port, "127.0.0.1");
  upstream.on("error", () => client.destroy());
  client.on("close", () => upstream.destroy());
  upstream.on("close", () => client.destroy());
  upstream.pipe(client);
  client.pipe(upstream);
  return upstream;
}

describe("cluster trust: the data-plane hop is authenticated per connection", () => {
  it("a captured data-hop X-Herd-Peer is refused on any other connection and on any other node", async () => {
    // b's data plane is advertised at a relay that shows what a forwards to it.
    const relay = await startRelay();
    // a forwards each request (X-Herd-Peer): the credential under test. A relayed connection's
    // (cluster.hop: relay, the default) is its preamble's, tested in relay-hop.spec.ts.
    cluster = await startCluster([
      { node: "node-a", hop: "forward" },
      { node: "node-b", advertise: { data: `127.0.0.1:${relay.port}` } },
      { node: "node-c" },
    ]);
    const [a, b, c] = cluster.nodes as [Daemon, Daemon, Daemon];
    relay.target = Number(new URL(b.dataUrl).port);
    const { session } = await cluster.client(b).acquireSession({ pool: "w", sessionId: "hop" });
    const token = session!.token;
    await eventually("a knows b's session", async () =>
      (await cluster!.client(a).listSessions({})).sessions.some((x) => x.sessionId === "hop")
        ? true
        : undefined,
    );
    // Through a, one client connection, several requests: all reach b's worker.
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    closers.push(() => agent.destroy());
    for (let i = 0; i < 3; i++) {
      const r = await httpGet(`${a.dataUrl}/s/hop/whoami`, { "X-Herd-Token": token }, agent);
      expect(r.status).toBe(200);
      expect(JSON.parse(r.body).pid).toBe(session!.workerPid);
    }
    const captured = relay.captured.at(-1);
    expect(captured).toBeDefined();
    // The same credential, with the session's token, on a new connection: to b and to c.
    for (const d of [b, c]) {
      const r = await httpGet(`${d.dataUrl}/s/hop/whoami`, {
        "X-Herd-Token": token,
        "X-Herd-Peer": captured!,
      });
      expect(r.status).toBe(401);
    }
  });
});

describe("cluster trust: a kept-alive hop connection is checked on every request", () => {
  it("after genuine forwarded requests, a forged or another node's X-Herd-Peer on the same connection is refused", async () => {
    cluster = await startCluster([{ node: "node-a" }, { node: "node-b" }]);
    const [, b] = cluster.nodes as [Daemon, Daemon];
    const { session } = await cluster.client(b).acquireSession({ pool: "w", sessionId: "kept" });
    const token = session!.token;
    // What node-a would send b (a genuine handshake of its own), minted with the secret.
    const fromA = new PeerAuth(SECRET, "node-a");
    const url = `${b.dataUrl}/s/kept/whoami`;
    const wrong = {
      forged: (genuine: string) => `${genuine.slice(0, -1)}${genuine.endsWith("A") ? "B" : "A"}`,
      "for another node": () => fromA.connection("node-c"),
      "of another connection": () => fromA.connection("node-b"),
    };
    for (const [what, credential] of Object.entries(wrong)) {
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      closers.push(() => agent.destroy());
      const genuine = fromA.connection("node-b");
      for (let i = 0; i < 3; i++) {
        const r = await getOn(agent, url, { "X-Herd-Token": token, "X-Herd-Peer": genuine });
        expect(r.status, `request ${i}`).toBe(200);
        expect(r.reused).toBe(i > 0);
      }
      // "of another connection": one genuine credential, first used on a connection of its own.
      const other = credential(genuine);
      if (what === "of another connection") {
        const first = await httpGet(url, { "X-Herd-Token": token, "X-Herd-Peer": other });
        expect(first.status).toBe(200);
      }
      const r = await getOn(agent, url, { "X-Herd-Token": token, "X-Herd-Peer": other });
      expect(r.reused, what).toBe(true);
      expect(r.status, what).toBe(401);
    }
  }, 90_000);
});

describe("cluster trust: Redis with an ACL user and password", () => {
  it("a node whose Redis refuses its credentials fails at start, saying so, never showing the password", async () => {
    cluster = await startCluster([{ node: "node-a" }]);
    const url = new URL(cluster.redis.url);
    for (const [bad, says] of [
      [
        `redis://herd:not-the-password-4711@${url.host}/0`,
        /refused herd's credentials \(user "herd"\): WRONGPASS/,
      ],
      [
        `redis://${url.host}/0`,
        /refused herd's credentials \(no user or password in the URL\): NOAUTH/,
      ],
    ] as const) {
      const failed = await cluster.addNode({ node: "node-z", redisUrl: bad }).then(
        () => "started",
        (e: Error) => e.message,
      );
      expect(failed).toMatch(/herd serve exited before ready \(code 1/);
      expect(failed).toMatch(says);
      expect(failed).not.toContain("not-the-password-4711");
    }
  });

  it("neither the Redis password nor the cluster secret reaches a worker's environment", async () => {
    cluster = await startCluster([{ node: "node-a" }]);
    const [a] = cluster.nodes as [Daemon];
    const { session } = await cluster.client(a).acquireSession({ pool: "w" });
    const environ = readFileSync(`/proc/${session!.workerPid}/environ`, "latin1");
    expect(environ).toContain("PORT=");
    expect(environ).not.toContain(cluster.redis.password);
    expect(environ).not.toContain(SECRET);
    // Nor a log line of the node.
    expect(a.stderr() + a.stdout()).not.toContain(cluster.redis.password);
  });

  it("rediss://: a node reaches Redis over TLS with its ACL user", async () => {
    const dir = mkdtempSync(join(tmpdir(), "herd-trust-tls-"));
    closers.push(() => rmSync(dir, { recursive: true, force: true }));
    const made = spawnSync(
      "openssl",
      [
        ...["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"],
        ...["-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem")],
        ...["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
      ],
      { encoding: "utf8" },
    );
    expect(made.status, made.stderr).toBe(0);
    const port = await freePort();
    const password = "a-tls-redis-password-0123";
    const tls = spawn(
      "redis-server",
      [
        ...["--save", "", "--appendonly", "no", "--bind", "127.0.0.1", "--port", "0"],
        ...["--tls-port", String(port), "--tls-auth-clients", "no"],
        ...["--tls-cert-file", join(dir, "cert.pem"), "--tls-key-file", join(dir, "key.pem")],
        ...["--user", "default", "off"],
        ...["--user", "herd", "on", `>${password}`, "~herd:*", "&*", "+@all", "-@dangerous"],
      ],
      { stdio: "ignore" },
    );
    const exited = new Promise<void>((r) => tls.once("exit", () => r()));
    closers.push(async () => {
      tls.kill("SIGKILL");
      await exited;
    });
    const url = `rediss://herd:${password}@127.0.0.1:${port}/0`;
    await eventually("redis-server with TLS", async () => {
      const c = createRedis({
        url,
        socket: { tls: true, ca: readFileSync(join(dir, "cert.pem")), reconnectStrategy: false },
      });
      c.on("error", () => {});
      try {
        await c.connect();
        return (await c.ping()) === "PONG" || undefined;
      } catch {
        return undefined;
      } finally {
        if (c.isOpen) c.destroy();
      }
    });
    cluster = await startCluster([]);
    const d = await cluster.addNode({
      node: "node-tls",
      redisUrl: url,
      env: { NODE_EXTRA_CA_CERTS: join(dir, "cert.pem") },
    });
    const { session } = await cluster
      .client(d)
      .acquireSession({ pool: "w", sessionId: "over-tls" });
    expect(session?.node).toBe("node-tls");
    const stats = await cluster.client(d).getStats({});
    expect(stats.clusterNodes.map((n) => n.node)).toEqual(["node-tls"]);
    expect(d.stdout() + d.stderr()).toContain(`Redis at rediss://127.0.0.1:${port}`);
    expect(d.stdout() + d.stderr()).not.toContain(password);
  });
});

/** A GET on `agent`: its status, and whether it went on a connection an earlier one used. */
function getOn(
  agent: Agent,
  url: string,
  headers: Record<string, string>,
): Promise<{ status: number; reused: boolean }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers, agent }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode ?? 0, reused: req.reusedSocket }));
    });
    req.on("error", reject);
    req.end();
  });
}

function httpGet(
  url: string,
  headers: Record<string, string>,
  agent?: Agent,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers, agent: agent ?? false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => {
        body += c;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end();
  });
}
