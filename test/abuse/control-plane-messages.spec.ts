// Oversized and malformed messages on the control plane (issue 10, item 3): a request over
// the 4 MiB limit fails promptly with RESOURCE_EXHAUSTED over gRPC (HTTP/2), gRPC-Web and
// Connect alike, for connect-es clients and for grpc-js (nice-grpc); undecodable protobuf is
// the caller's bad input, INVALID_ARGUMENT.

import { connect as connectHttp2, constants } from "node:http2";
import { fileURLToPath } from "node:url";
import { Code } from "@connectrpc/connect";
import { loadPackageDefinition, type ServiceClientConstructor } from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { ClientError, createChannel, createClient, Status } from "nice-grpc";
import { afterEach, describe, expect, it } from "vitest";
import {
  codeOf,
  type Harness,
  herdClient,
  PROTOCOLS,
  startHarness,
} from "../helpers/control-plane-harness.ts";
import { HERD_BIN, runCaptured } from "../helpers/index.ts";
import { eventually } from "./raw-client.ts";

const OVERSIZED = "x".repeat(5 * 1024 * 1024);

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

describe("messages over the 4 MiB limit", () => {
  for (const protocol of PROTOCOLS) {
    it(`fail promptly with RESOURCE_EXHAUSTED (${protocol})`, async () => {
      h = await startHarness([{}], { idleTimeoutMs: 500 });
      const c = herdClient(protocol, h.cp.url);
      const code = await codeOf(
        c.acquireSession({ labels: { big: OVERSIZED } }, { timeoutMs: 10_000 }),
      );
      expect(code).toBe(Code.ResourceExhausted);
      // The connection (or a new one) still serves: over HTTP/1.1 the refusal said
      // Connection: close, so the client did not reuse a connection still inside the body.
      expect((await c.getStats({})).pools.length).toBe(1);
      // Nothing of the refused call lingers: the connection goes idle and is closed.
      const harness = h;
      expect(await eventually(() => harness.cp.openConnections === 0, 10_000)).toBe(true);
    });
  }

  it("end the HTTP/2 stream (RST_STREAM NO_ERROR after the trailers) while the client still sends", async () => {
    h = await startHarness();
    const session = connectHttp2(h.cp.url);
    session.on("error", () => {});
    try {
      const call = session.request({
        ":method": "POST",
        ":path": "/herd.v1.HerdService/GetStats",
        "content-type": "application/grpc",
        te: "trailers",
      });
      call.on("error", () => {});
      // A gRPC frame announcing 5 MiB, of which only the length prefix is ever sent.
      const prefix = Buffer.alloc(5);
      prefix.writeUInt32BE(5 * 1024 * 1024, 1);
      call.write(prefix);
      let trailers: Record<string, unknown> | undefined;
      call.on("trailers", (t) => {
        trailers = t;
      });
      call.resume();
      let closed = false;
      call.once("close", () => {
        closed = true;
      });
      expect(await eventually(() => closed, 10_000), "the server ends the stream").toBe(true);
      expect(trailers?.["grpc-status"]).toBe(String(Status.RESOURCE_EXHAUSTED));
      expect(call.rstCode).toBe(constants.NGHTTP2_NO_ERROR);
    } finally {
      session.destroy();
    }
  });

  it("fail promptly with RESOURCE_EXHAUSTED for grpc-js (nice-grpc)", async () => {
    h = await startHarness();
    const proto = fileURLToPath(new URL("../../proto", import.meta.url));
    const pkg = loadPackageDefinition(
      loadSync("herd/v1/herd.proto", { includeDirs: [proto], defaults: true }),
    ) as unknown as { herd: { v1: { HerdService: ServiceClientConstructor } } };
    const channel = createChannel(h.cp.url.replace("http://", ""));
    const client = createClient(pkg.herd.v1.HerdService.service as never, channel) as unknown as {
      AcquireSession(req: object, opts?: object): Promise<unknown>;
      GetStats(req: object): Promise<{ pools: unknown[] }>;
    };
    try {
      const status = await client
        .AcquireSession({ labels: { big: OVERSIZED } }, { deadline: Date.now() + 10_000 })
        .then(
          () => Status.OK,
          (e: unknown) => (e instanceof ClientError ? e.code : Status.UNKNOWN),
        );
      expect(status).toBe(Status.RESOURCE_EXHAUSTED);
      expect((await client.GetStats({})).pools.length).toBe(1);
    } finally {
      channel.close();
    }
  });
});

describe("a call refused before its request was read", () => {
  it("answers UNAUTHENTICATED over HTTP/1.1, never a reset connection (the close lingers)", async () => {
    h = await startHarness([{}], { token: "spec-token-refused-calls" });
    // `herd watch` in its own process: a server stream's request body is still on its way when
    // the token check refuses the call, and a close with those bytes unread reset the
    // connection — the CLI said "write EPIPE" instead of asking for a token.
    const addr = new URL(h.cp.url).host;
    for (let i = 0; i < 15; i++) {
      const run = await runCaptured(process.execPath, [HERD_BIN, "watch", "--snapshot"], {
        env: { HERD_ADDR: addr },
      });
      expect(run.stderr).toContain("Pass --token or set HERD_TOKEN");
    }
  });
});
