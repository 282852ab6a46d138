// The cluster hop as a byte relay (issue 26, src/dataplane/relay-hop.ts): a client connection on
// a node that does not own its session is relayed, bytes unchanged, to the owner (from its
// second request for another node's session on: the first is forwarded one hop), which serves
// it as a client connection of its own. Three real daemons and a real redis-server; the relay
// preamble's attacks are sent straight to a node's data plane. The worker's X-Forwarded-For
// tells the paths apart: a relayed connection shows the client alone, a classic forward adds
// the forwarding node.

import { randomBytes } from "node:crypto";
import { readdirSync } from "node:fs";
import { Agent, request } from "node:http";
import { connect, createServer } from "node:net";
import { createClient as createRedis } from "redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { encodeSession, PeerAuth, RecordKeys } from "../../src/cluster/index.ts";
import type { Daemon } from "../helpers/daemon.ts";
import { eventually } from "../helpers/herd.ts";
import { cmdline, descendants } from "../helpers/processes.ts";
import { SECRET, startCluster, type TestCluster } from "./cluster-harness.ts";

/** The client's address: not the nodes' (127.0.0.1), so X-Forwarded-For shows whose it is. */
const CLIENT = "127.0.0.2";
/** Longer than the credentials' clock-skew allowance (10 s). */
const PAST_THE_WINDOW_MS = 11_000;

let cluster: TestCluster;
let a: Daemon;
let b: Daemon;
let c: Daemon;
const tokens: Record<string, string> = {};
const pids: Record<string, number> = {};
const agents: Agent[] = [];

beforeAll(async () => {
  cluster = await startCluster(
    ["node-a", "node-b", "node-c"].map((node) => ({
      node,
      config: { data: { tokens: "required" } },
    })),
  );
  [a, b, c] = cluster.nodes as [Daemon, Daemon, Daemon];
  for (const [d, id] of [
    [a, "sa"],
    [b, "sb"],
    [c, "sc"],
  ] as const) {
    const { session } = await cluster.client(d).acquireSession({ pool: "w", sessionId: id });
    tokens[id] = session!.token;
    pids[id] = session!.workerPid;
  }
  for (const d of [a, b, c]) {
    await eventually("every node knows every session", async () => {
      const ids = (await cluster.client(d).listSessions({})).sessions.map((s) => s.sessionId);
      return ["sa", "sb", "sc"].every((id) => ids.includes(id)) ? true : undefined;
    });
  }
}, 120_000);

afterAll(async () => {
  for (const agent of agents) agent.destroy();
  await cluster?.cleanup();
}, 60_000);

function keptAlive(): Agent {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  agents.push(agent);
  return agent;
}

interface Answer {
  status: number;
  reused: boolean;
  body: string;
  json: () => { pid: number; headers: Record<string, string>; bodyLength: number; url: string };
}

function send(
  d: Daemon,
  path: string,
  opts: { agent?: Agent; headers?: Record<string, string>; method?: string; body?: Buffer } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${d.dataUrl}${path}`,
      {
        method: opts.method ?? "GET",
        headers: opts.headers,
        agent: opts.agent ?? false,
        localAddress: CLIENT,
      },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          body += chunk;
        });
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            reused: req.reusedSocket,
            body,
            json: () => JSON.parse(body),
          }),
        );
      },
    );
    req.on("error", reject);
    req.end(opts.body);
  });
}

const token = (id: string) => ({ "X-Herd-Token": tokens[id]! });

/** Writes `bytes` on a new connection to `d`'s data plane; everything it answers until it closes. */
function raw(d: Daemon, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const url = new URL(d.dataUrl);
    const socket = connect(Number(url.port), url.hostname);
    let got = "";
    socket.setEncoding("latin1");
    socket.on("data", (chunk: string) => {
      got += chunk;
    });
    socket.on("error", reject);
    socket.on("close", () => resolve(got));
    // Not half-closed: a client that half-closes while its session is found is taken as gone.
    socket.write(bytes);
  });
}

const request1 = (id: string, connection = "close") =>
  `GET /s/${id}/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Herd-Token: ${tokens[id]}\r\nConnection: ${connection}\r\n\r\n`;

/** The answers (status lines) in what a connection received. */
function statuses(got: string): number[] {
  return [...got.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
}

describe("relay hop: through a non-owner", () => {
  it("requests on one kept-alive connection reach the owner's worker, which sees the client's address", async () => {
    const agent = keptAlive();
    for (let i = 0; i < 4; i++) {
      const r = await send(a, "/s/sb/echo/x?q=1", { agent, headers: token("sb") });
      expect(r.status, r.body).toBe(200);
      expect(r.reused).toBe(i > 0);
      const seen = r.json();
      expect(seen.pid).toBe(pids.sb);
      expect(seen.url).toBe("/echo/x?q=1");
      // The first forwarded one hop (node-a's address added); then the client alone: relayed.
      expect(seen.headers["x-forwarded-for"]).toBe(i === 0 ? `${CLIENT}, 127.0.0.1` : CLIENT);
      expect(seen.headers["x-herd-peer"]).toBeUndefined();
    }
  });

  it("a POST body goes through whole", async () => {
    const agent = keptAlive();
    const body = randomBytes(300_000);
    for (let i = 0; i < 3; i++) {
      const r = await send(a, "/s/sb/echo", {
        agent,
        method: "POST",
        headers: { ...token("sb"), "Content-Type": "application/octet-stream" },
        body,
      });
      expect(r.status, r.body).toBe(200);
      expect(r.json().bodyLength).toBe(body.length);
      if (i > 0) expect(r.json().headers["x-forwarded-for"]).toBe(CLIENT);
    }
  });

  it("a WebSocket opens and echoes", async () => {
    const ws = new WebSocket(`${a.dataUrl.replace("http", "ws")}/s/sb/ws`, {
      headers: token("sb"),
      localAddress: CLIENT,
    });
    const messages: string[] = [];
    ws.on("message", (m) => messages.push(m.toString()));
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
    });
    await eventually("hello", () => messages.length >= 1 || undefined);
    expect(messages[0]).toBe(`hello ${pids.sb}`);
    ws.send("ping through the relay");
    await eventually("echo", () => messages.length >= 2 || undefined);
    expect(messages[1]).toBe("ping through the relay");
    const closed = new Promise<void>((r) => ws.once("close", () => r()));
    ws.close();
    await closed;
  });

  it("a WebSocket upgrade on a relayed connection opens at the owner and echoes", async () => {
    const url = new URL(a.dataUrl);
    const socket = connect({ port: Number(url.port), host: url.hostname, localAddress: CLIENT });
    let got = Buffer.alloc(0);
    socket.on("data", (chunk: Buffer) => {
      got = Buffer.concat([got, chunk]);
    });
    const closed = new Promise<void>((r) => socket.once("close", () => r()));
    socket.on("error", () => {});
    try {
      // A plain request (forwarded one hop), then the upgrade: relayed to b, which tunnels it.
      socket.write(
        request1("sb", "keep-alive") +
          `GET /s/sb/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Herd-Token: ${tokens.sb}\r\n` +
          "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n" +
          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
      );
      const text = () => got.toString("latin1");
      await eventually("101 and hello", () => text().includes(`hello ${pids.sb}`) || undefined);
      expect(statuses(text())).toEqual([200, 101]);
      // A masked text frame (mask 0): the worker echoes it unmasked.
      const payload = Buffer.from("ping over a relayed connection");
      socket.write(
        Buffer.concat([Buffer.from([0x81, 0x80 | payload.length, 0, 0, 0, 0]), payload]),
      );
      await eventually("echo", () => text().includes(payload.toString()) || undefined);
    } finally {
      socket.destroy();
      await closed;
    }
  });

  it("one connection alternating sessions of two other nodes and of this one gets each from its worker", async () => {
    const agent = keptAlive();
    const order = ["sb", "sc", "sb", "sa", "sc", "sa", "sb"];
    for (const [i, id] of order.entries()) {
      const r = await send(a, `/s/${id}/echo`, { agent, headers: token(id) });
      expect(r.status, `${id}: ${r.body}`).toBe(200);
      expect(r.reused).toBe(i > 0);
      expect(r.json().pid, id).toBe(pids[id]);
    }
  });

  it("a client that half-closes in its relayed request's body still gets the answer", async () => {
    const url = new URL(a.dataUrl);
    const socket = connect({ port: Number(url.port), host: url.hostname, localAddress: CLIENT });
    let got = "";
    socket.setEncoding("latin1").on("data", (chunk: string) => {
      got += chunk;
    });
    const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
    socket.write(request1("sb", "keep-alive"));
    await eventually("the first answer", async () =>
      statuses(got).length === 1 ? true : undefined,
    );
    // The second request is relayed from its head on; its body's last bytes come with the FIN,
    // once the native relay holds the connection, so only the relay can pass the half-close
    // on and the owner's answer (which comes after the whole body) back.
    const relay = descendants(a.pid).find((pid) => cmdline(pid).includes("tunnel-relay"))!;
    const held = readdirSync(`/proc/${relay}/fd`).length;
    socket.write(
      `POST /s/sb/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Herd-Token: ${tokens.sb}\r\nContent-Length: 10\r\n\r\n12345`,
    );
    await eventually("the relay holds the connection", async () =>
      readdirSync(`/proc/${relay}/fd`).length >= held + 2 ? true : undefined,
    );
    socket.end("67890");
    await closed;
    expect(statuses(got)).toEqual([200, 200]);
    expect(got).toContain('"bodyLength":10');
  });

  it("without the native relay (pipe), every byte after the relay starts reaches the owner", async () => {
    const d = await cluster.addNode({
      node: "node-d",
      config: { data: { tokens: "required", native_relay: false } },
    });
    await eventually("node-d knows sb", async () =>
      (await cluster.client(d).listSessions({})).sessions.some((x) => x.sessionId === "sb")
        ? true
        : undefined,
    );
    const url = new URL(d.dataUrl);
    const socket = connect({ port: Number(url.port), host: url.hostname, localAddress: CLIENT });
    let got = "";
    socket.setEncoding("latin1").on("data", (chunk: string) => {
      got += chunk;
    });
    const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
    const answers = (n: number) => async () => (statuses(got).length === n ? true : undefined);
    socket.write(request1("sb", "keep-alive"));
    await eventually("the first answer", answers(1));
    // Relayed from this head on: the body's rest, and a third request, come after.
    socket.write(
      `POST /s/sb/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Herd-Token: ${tokens.sb}\r\nContent-Length: 10\r\n\r\n12345`,
    );
    await new Promise((resolve) => setTimeout(resolve, 300));
    socket.write("67890");
    await eventually("the second answer", answers(2));
    socket.write(request1("sb"));
    await closed;
    expect(statuses(got)).toEqual([200, 200, 200]);
    expect(got).toContain('"bodyLength":10');
  });

  it("the owner refuses a wrong or missing token as it does directly, on a relayed connection too", async () => {
    for (const d of [b, a]) {
      expect((await send(d, "/s/sb/echo", { headers: { "X-Herd-Token": "wrong" } })).status).toBe(
        401,
      );
      expect((await send(d, "/s/sb/echo")).status).toBe(401);
    }
    const agent = keptAlive();
    expect((await send(a, "/s/sb/echo", { agent, headers: token("sb") })).status).toBe(200);
    const wrong = await send(a, "/s/sb/echo", { agent, headers: { "X-Herd-Token": "wrong" } });
    expect(wrong.reused).toBe(true);
    expect(wrong.status).toBe(401);
  });
});

describe("relay hop: preambles sent straight to a node's data plane", () => {
  const fromA = new PeerAuth(SECRET, "node-a");
  const preamble = (credential: string) => `HERD-RELAY/1 ${credential}\r\n`;

  it("a genuine one is served once, as the client it names; the same preamble again is refused", async () => {
    const line = preamble(fromA.relay("node-b", "127.0.0.9"));
    const first = await raw(b, line + request1("sb"));
    expect(statuses(first)).toEqual([200]);
    expect(first).toContain('"x-forwarded-for":"127.0.0.9"');
    const again = await raw(b, line + request1("sb"));
    expect(statuses(again)).toEqual([401]);
    expect(again).toMatch(/relay preamble .*already used/);
  });

  it("forged, stale, for another node, garbage and oversized ones are refused and serve nothing", async () => {
    const genuine = fromA.relay("node-b", "127.0.0.9");
    const cases: Record<string, [string, RegExp]> = {
      "signed with another secret": [
        preamble(new PeerAuth("not-the-cluster-secret-xyz", "node-a").relay("node-b", "1.2.3.4")),
        /not signed with this cluster's secret/,
      ],
      "client address altered": [
        preamble(genuine.replace("~127.0.0.9~", "~127.0.0.8~")),
        /not signed with this cluster's secret/,
      ],
      stale: [
        preamble(fromA.relay("node-b", "127.0.0.9", Date.now() - PAST_THE_WINDOW_MS)),
        /outside/,
      ],
      "for another node": [preamble(fromA.relay("node-c", "127.0.0.9")), /for node node-c/],
      garbage: [preamble("r1~node-a~node-b~1~nonce~mac"), /malformed/],
      oversized: [`HERD-RELAY/1 ${"A".repeat(600)}`, /no line end within 512 bytes/],
    };
    for (const [what, [line, says]] of Object.entries(cases)) {
      const got = await raw(b, line + request1("sb"));
      expect(statuses(got), what).toEqual([401]);
      expect(got, what).toMatch(says);
      expect(got, what).not.toContain(`"pid":${pids.sb}`);
    }
    await eventually(
      "refusals logged",
      () => /relay preamble refused/.test(b.stdout() + b.stderr()) || undefined,
    );
  });

  it("a relayed connection is never relayed again: another node's session takes the classic one-hop forward", async () => {
    const line = () => preamble(fromA.relay("node-b", "127.0.0.9"));
    const got = await raw(b, line() + request1("sb", "keep-alive") + request1("sc"));
    expect(statuses(got), got).toEqual([200, 200]);
    expect(got).toContain(`"pid":${pids.sc}`);
    // b forwarded it (X-Herd-Peer, one hop): c's worker sees the client and then b.
    expect(got).toContain('"x-forwarded-for":"127.0.0.9, 127.0.0.1"');
    // The request a connection was relayed for must be of a session of this node: else it is
    // answered as a classic forward's would be, never sent on.
    const first = await raw(b, line() + request1("sc"));
    expect(statuses(first), first).toEqual([502]);
    expect(first).toMatch(/ended on its node before this request reached it/);
  });

  it("a relayed connection whose owner's view is stale (the session 'on' the sender, which has none) ends in an error, not a loop", async () => {
    // A session record signed with the cluster secret that says node-a owns "ghost": node-b
    // reads it, node-a has no such session.
    const keys = new RecordKeys(SECRET);
    const now = new Date();
    const ghostToken = "ghost-token-0123456789";
    const aData = new URL(a.dataUrl).host;
    const info = encodeSession(
      {
        id: "ghost",
        pool: "w",
        workerId: "w-ghost",
        workerPid: 1,
        workerAddress: "127.0.0.1:1",
        token: ghostToken,
        createdAt: now,
        lastActiveAt: now,
        connections: 0,
        labels: {},
      },
      { node: "node-a", data: aData, control: new URL(a.controlUrl).host },
      keys,
    );
    const r = createRedis({ url: cluster.redis.url });
    r.on("error", () => {});
    await r.connect();
    try {
      await r.hSet("herd:s:ghost", { node: "node-a", gen: "1", pool: "w", state: "ready", info });
      const line = preamble(fromA.relay("node-b", "127.0.0.9"));
      const got = await raw(
        b,
        `${line}${request1("sb", "keep-alive")}GET /s/ghost/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Herd-Token: ${ghostToken}\r\nConnection: close\r\n\r\n`,
      );
      // b forwards it to a (one hop, X-Herd-Peer), which runs no such session: an error.
      expect(statuses(got), got).toEqual([200, 502]);
      expect(got).toMatch(/ended on its node before this request reached it/);
    } finally {
      await r.del("herd:s:ghost");
      r.destroy();
    }
  });
});

describe("relay hop: only to an owner that accepts it", () => {
  it("an owner whose live record does not say it accepts relays (an older herd) is forwarded to one hop per request", async () => {
    const keys = new RecordKeys(SECRET);
    const r = createRedis({ url: cluster.redis.url });
    r.on("error", () => {});
    await r.connect();
    // Two fake owners on loopback, each answering 200 to every request head and recording the
    // first bytes of each connection: one whose signed record says it accepts relays, one (an
    // older herd) whose record does not.
    const firsts: Record<string, string[]> = { "node-old": [], "node-new": [] };
    const servers = Object.keys(firsts).map((node) =>
      createServer((socket) => {
        let buffered = "";
        let first = true;
        socket.on("error", () => {});
        socket.on("data", (chunk: Buffer) => {
          const text = chunk.toString("latin1");
          if (first) firsts[node]!.push(text);
          first = false;
          buffered += text;
          for (
            let end = buffered.indexOf("\r\n\r\n");
            end >= 0;
            end = buffered.indexOf("\r\n\r\n")
          ) {
            buffered = buffered.slice(end + 4);
            socket.write(
              "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok",
            );
          }
        });
      }),
    );
    try {
      const now = new Date();
      for (const [i, node] of Object.keys(firsts).entries()) {
        const server = servers[i]!;
        await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
        const address = `127.0.0.1:${(server.address() as { port: number }).port}`;
        const record = {
          node,
          data: address,
          control: address,
          pools: {},
          stats: [],
          renewedAt: Date.now(),
          leaseMs: 60_000,
          ...(node === "node-new" && { relay: true }),
        };
        await r.set(`herd:alive:${node}`, keys.sign("node", JSON.stringify(record)), {
          PX: 60_000,
        });
        await r.sAdd("herd:members", node);
        const id = `on-${node}`;
        tokens[id] = `token-of-${id}`;
        const info = encodeSession(
          {
            id,
            pool: "w",
            workerId: "w-fake",
            workerPid: 1,
            workerAddress: address,
            token: tokens[id]!,
            createdAt: now,
            lastActiveAt: now,
            connections: 0,
            labels: {},
          },
          { node, data: address, control: address },
          keys,
        );
        await r.hSet(`herd:s:${id}`, { node, gen: "1", pool: "w", state: "ready", info });
      }
      for (const node of Object.keys(firsts)) {
        const agent = keptAlive();
        for (let i = 0; i < 3; i++) {
          const res = await send(a, `/s/on-${node}/x`, { agent, headers: token(`on-${node}`) });
          expect(res.status, `${node}: ${res.body}`).toBe(200);
          expect(res.reused).toBe(i > 0);
        }
      }
      expect(
        firsts["node-new"]!.some((t) => t.startsWith("HERD-RELAY/1 r1~node-a~node-new~")),
      ).toBe(true);
      expect(firsts["node-old"]!.length).toBeGreaterThan(0);
      for (const first of firsts["node-old"]!) {
        expect(first).toMatch(/^GET \/s\/on-node-old\/x HTTP\/1\.1\r\n/);
        expect(first).toMatch(/\r\nx-herd-peer: d3~node-a~node-old~/i);
      }
    } finally {
      for (const node of Object.keys(firsts)) {
        await r.del([`herd:s:on-${node}`, `herd:alive:${node}`]);
        await r.sRem("herd:members", node);
      }
      r.destroy();
      for (const server of servers) {
        server.close();
        // The nodes' upstream connections to it close with their client connections.
      }
      for (const agent of agents.splice(0)) agent.destroy();
    }
  });
});

describe("relay hop: an owner that died", () => {
  it("a relay hop that cannot reach the owner answers 502 naming it, as the classic forward does", async () => {
    const own = await startCluster([
      { node: "node-x", lease: "10s" },
      { node: "node-y", lease: "10s" },
    ]);
    try {
      const [x, y] = own.nodes as [Daemon, Daemon];
      await own.client(x).acquireSession({ pool: "w", sessionId: "dies" });
      await eventually("y knows it", async () =>
        (await own.client(y).listSessions({})).sessions.some((s) => s.sessionId === "dies")
          ? true
          : undefined,
      );
      const agent = keptAlive();
      const first = await send(y, "/s/dies/echo", { agent });
      expect(first.status, first.body).toBe(200);
      // Within y's view of x's lease (10 s), the next request on the connection is relayed: its
      // dial is refused.
      await x.kill();
      const second = await send(y, "/s/dies/echo", { agent });
      expect(second.reused).toBe(true);
      expect(second.status, second.body).toBe(502);
      expect(second.body).toMatch(/node node-x, which runs session dies, did not answer/);
    } finally {
      await own.cleanup();
    }
  }, 90_000);
});
