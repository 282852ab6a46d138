// node:http's side of the hand-off (node-http-server.ts, hand-off.ts): a connection adopted
// with the error its open met answers its first request with that error, once, and serves the
// next request on it as node:http's own; a declined connection is parsed from its unread bytes.
// Real sockets and node:http. The directory and agents are never reached: every request here
// names no session, so routing refuses it first; they are placeholders that throw if used.

import { createServer, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { closeAll, eventually, rawConnect } from "../../../test/abuse/raw-client.ts";
import { HerdError, type SessionRoutes, silentLogger } from "../../core/index.ts";
import { ClientConnections } from "../client-connections.ts";
import { zeroCounters } from "../data-plane-counters.ts";
import type { HandOffReason } from "../hand-off.ts";
import { SessionAccess } from "../session-access.ts";
import { WebAccess } from "../web-access.ts";
import type { NodeHttpContext } from "./node-http-context.ts";
import { NodeHttpServer } from "./node-http-server.ts";
import type { UpstreamAgents } from "./upstream-agents.ts";

const unused = new Proxy(
  {},
  {
    get: (_, name) => {
      throw new Error(`not expected here: ${String(name)}`);
    },
  },
);

function context(): NodeHttpContext {
  const directory = unused as SessionRoutes;
  return {
    directory,
    logger: silentLogger,
    access: new SessionAccess(directory, {
      autoAcquire: true,
      tokens: false,
      defaultPool: undefined,
      cluster: undefined,
    }),
    web: new WebAccess({ bound: "127.0.0.1" }),
    sessionHeader: "x-session-id",
    counters: zeroCounters(),
    connections: new ClientConnections(directory),
    bodyRate: { timeoutMs: 20_000, minRate: 500 },
    agents: unused as UpstreamAgents,
  };
}

const NO_SESSION = "GET /b HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

let listener: Server | undefined;
let nodeHttp: NodeHttpServer | undefined;

afterEach(async () => {
  closeAll();
  nodeHttp?.close();
  await new Promise<void>((done) => (listener ? listener.close(() => done()) : done()));
  listener = nodeHttp = undefined;
});

/** A listener whose connections are adopted after their first read, as the fast path does. */
async function adoptingListener(why: HandOffReason): Promise<number> {
  const server = new NodeHttpServer(context(), {
    maxHeaderSize: 16 * 1024,
    headersTimeoutMs: 10_000,
    requestTimeoutMs: 0,
    keepAliveTimeoutMs: 5_000,
  });
  nodeHttp = server;
  listener = createServer({ allowHalfOpen: true }, (socket: Socket) => {
    socket.once("data", (unread: Buffer) => server.adopt({ socket, unread, why }));
  });
  await new Promise<void>((done) => listener!.listen(0, "127.0.0.1", () => done()));
  server.listening();
  const address = listener.address();
  return typeof address === "object" && address ? address.port : 0;
}

describe("NodeHttpServer.adopt", () => {
  it("answers the first request with the error the open met, once, then serves the next", async () => {
    const error = new HerdError("unavailable", "no worker of pool p became free in time");
    const port = await adoptingListener({ kind: "open-failed", error });
    const client = await rawConnect(port);
    client.write("GET /a HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Session-ID: s1\r\n\r\n");
    expect(await eventually(() => client.text.includes("became free in time"))).toBe(true);
    expect(client.text).toMatch(/^HTTP\/1\.1 503 /);
    client.write(NO_SESSION);
    expect(await eventually(() => client.text.includes("missing session id"))).toBe(true);
    const answers = client.text.match(/HTTP\/1\.1 \d{3}/g);
    expect(answers).toEqual(["HTTP/1.1 503", "HTTP/1.1 400"]);
  });

  it("parses a declined connection from the bytes the fast path read", async () => {
    const port = await adoptingListener({ kind: "declined" });
    const client = await rawConnect(port);
    client.write(NO_SESSION);
    expect(await eventually(() => client.text.includes("missing session id"))).toBe(true);
    expect(client.text).toMatch(/^HTTP\/1\.1 400 /);
  });
});
