// The one-call client against a plain node:http server playing the daemon: the request it
// sends, and each kind of answer turned into a decoded message or one DaemonCallError.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, expect, it } from "vitest";
import { DaemonCallError, describeDaemonError } from "./daemon-error.ts";
import { unaryClient } from "./unary-client.ts";

let server: Server | undefined;
afterEach(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

type Seen = { url?: string; headers: IncomingMessage["headers"]; body: string };

/** A server that records the request and answers with status, content type and body. */
async function daemon(
  status: number,
  type: string,
  body: string,
): Promise<{ addr: string; seen: Seen }> {
  const seen: Seen = { headers: {}, body: "" };
  server = createServer((req: IncomingMessage, res: ServerResponse) => {
    seen.url = req.url;
    seen.headers = req.headers;
    req.setEncoding("utf8");
    req.on("data", (c: string) => {
      seen.body += c;
    });
    req.on("end", () => res.writeHead(status, { "content-type": type }).end(body));
  });
  await new Promise<void>((r) => server!.listen(0, "127.0.0.1", r));
  return { addr: `127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

it("posts the request as Connect JSON with the token, and decodes the answer", async () => {
  const { addr, seen } = await daemon(
    200,
    "application/json",
    JSON.stringify({ pools: [{ name: "demo", workersTotal: 2 }], someFutureField: 1 }),
  );
  const { client } = unaryClient({ addr, token: "t0k" }, {});
  const stats = await client.getStats({ pool: "demo" });
  expect(stats.pools.map((p) => [p.name, p.workersTotal])).toEqual([["demo", 2]]);
  expect(seen.url).toBe("/herd.v1.HerdService/GetStats");
  expect(seen.headers).toMatchObject({
    "content-type": "application/json",
    "connect-protocol-version": "1",
    authorization: "Bearer t0k",
  });
  expect(JSON.parse(seen.body)).toEqual({ pool: "demo" });
});

it("a Connect error body: its code and message; any other error: the code for its HTTP status", async () => {
  const failure = async (status: number, type: string, body: string) => {
    const { addr } = await daemon(status, type, body);
    const { client, where } = unaryClient({ addr }, {});
    const err = await client.listSessions({}).catch((e: unknown) => e);
    await new Promise<void>((r) => server!.close(() => r()));
    server = undefined;
    expect(err).toBeInstanceOf(DaemonCallError);
    return describeDaemonError(err as DaemonCallError, where);
  };
  expect(
    await failure(404, "application/json", '{"code":"not_found","message":"no pool \\"x\\""}'),
  ).toBe('no pool "x" (NotFound)');
  expect(await failure(404, "text/plain", "nothing here")).toBe("HTTP 404 (Unimplemented)");
  expect(await failure(503, "text/html", "<h1>down</h1>")).toBe("HTTP 503 (Unavailable)");
  expect(await failure(200, "text/html", "<h1>hello</h1>")).toMatch(
    /^the daemon's answer is not JSON: <h1>hello<\/h1> \(Internal\)$/,
  );
  expect(await failure(200, "application/json", '{"sessions":"many"}')).toMatch(
    /^the daemon's answer does not decode: .* \(Internal\)$/,
  );
});
