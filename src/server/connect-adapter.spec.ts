import { once } from "node:events";
import { createServer, request } from "node:http";
import { createServer as createHttp2Server, connect as http2Connect } from "node:http2";
import type { AddressInfo } from "node:net";
import { Code, ConnectError, createContextValues } from "@connectrpc/connect";
import type { UniversalServerRequest } from "@connectrpc/connect/protocol";
import { universalRequestFromNodeRequest } from "@connectrpc/connect-node";
import { afterEach, describe, expect, it } from "vitest";
import { universalRequest } from "./connect-adapter.ts";

type Make = (...args: Parameters<typeof universalRequest>) => UniversalServerRequest;
const ours: Make = universalRequest;
const connectNode: Make = (req, res, _url, values) =>
  universalRequestFromNodeRequest(req as never, res as never, undefined, values);

const closers: (() => void)[] = [];
afterEach(() => {
  for (const close of closers.splice(0)) close();
});

/** An HTTP/1.1 server whose one request is made into a universal request by `make`; `answer`
 * says whether it is answered (else the client goes away first). */
async function h1(make: Make, answer: boolean): Promise<UniversalServerRequest> {
  let made!: UniversalServerRequest;
  const closed = new Promise<void>((resolve) => {
    const server = createServer((req, res) => {
      made = make(req, res, req.url ?? "", createContextValues());
      res.once("close", () => setImmediate(resolve));
      if (answer) res.end("ok");
    });
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      const client = request({ port, host: "127.0.0.1", path: "/svc/Method?x=1", method: "POST" });
      client.on("error", () => {});
      client.on("response", (res) => res.resume());
      client.end("{}");
      if (!answer) setTimeout(() => client.destroy(), 50);
    });
    closers.push(() => server.close());
  });
  await closed;
  return made;
}

async function h2(make: Make, answer: boolean): Promise<UniversalServerRequest> {
  let made!: UniversalServerRequest;
  const server = createHttp2Server((req, res) => {
    made = make(req, res, req.url ?? "", createContextValues());
    if (answer) res.end("ok");
  });
  closers.push(() => server.close());
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  const session = http2Connect(`http://127.0.0.1:${port}`);
  closers.push(() => session.destroy());
  const stream = session.request({ ":method": "POST", ":path": "/svc/Method" });
  stream.on("error", () => {});
  stream.end("{}");
  stream.resume();
  if (answer) await once(stream, "close");
  else {
    await new Promise((r) => setTimeout(r, 50));
    stream.close(); // RST_STREAM before the answer: the client went away
  }
  // The server side's close follows the client's.
  await new Promise((r) => setTimeout(r, 200));
  return made;
}

describe("the control plane's request signal", () => {
  it.each([
    ["HTTP/1.1", h1],
    ["HTTP/2", h2],
  ] as const)(
    "%s: a call answered in full never aborts it (connect-node's does, for every call)",
    async (_, serve) => {
      const req = await serve(ours, true);
      expect(req.signal.aborted).toBe(false);
      // What this adapter replaces: an abort (and a DOMException with its stack) per finished call.
      const theirs = await serve(connectNode, true);
      expect(theirs.signal.aborted).toBe(true);
    },
  );

  it.each([
    ["HTTP/1.1", h1],
    ["HTTP/2", h2],
  ] as const)(
    "%s: a client that goes away before the answer aborts it, CANCELED",
    async (_, serve) => {
      const req = await serve(ours, false);
      expect(req.signal.aborted).toBe(true);
      expect(req.signal.reason).toBeInstanceOf(ConnectError);
      expect((req.signal.reason as ConnectError).code).toBe(Code.Canceled);
    },
  );

  it("carries the method, the absolute URL with its query, the headers and the body", async () => {
    const req = await h1(ours, true);
    expect(req.method).toBe("POST");
    expect(req.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/svc\/Method\?x=1$/);
    expect(req.header.get("host")).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(Symbol.asyncIterator in (req.body as object)).toBe(true);
  });
});
