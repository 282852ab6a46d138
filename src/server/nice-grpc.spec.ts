// gRPC interoperability with an independent implementation: nice-grpc over @grpc/grpc-js,
// driven by the .proto file itself (not the generated TypeScript).

import { fileURLToPath } from "node:url";
import { loadPackageDefinition, type ServiceClientConstructor } from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { ClientError, createChannel, createClient, Metadata, Status } from "nice-grpc";
import { afterEach, describe, expect, it } from "vitest";
import { type Harness, startHarness } from "../../test/helpers/control-plane-harness.ts";

const PROTO_ROOT = fileURLToPath(new URL("../../proto", import.meta.url));

function herdServiceDefinition() {
  const pkg = loadPackageDefinition(
    loadSync("herd/v1/herd.proto", { includeDirs: [PROTO_ROOT], defaults: true, longs: Number }),
  ) as unknown as { herd: { v1: { HerdService: ServiceClientConstructor } } };
  return pkg.herd.v1.HerdService.service;
}

interface Session {
  sessionId: string;
  pool: string;
  workerPid: number;
}
/** grpc-js definitions keep the proto's method names. */
type Client = {
  AcquireSession(req: object, opts?: object): Promise<{ session: Session }>;
  ReleaseSession(req: object, opts?: object): Promise<{ session: Session }>;
  GetStats(req: object, opts?: object): Promise<{ pools: { name: string; sessions: number }[] }>;
  HoldSession(
    req: object,
    opts?: object,
  ): AsyncIterable<{ session?: Session; heartbeat?: object; holdId: string }>;
};

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

describe("nice-grpc (grpc-js) against the control plane", () => {
  it("acquires, holds, lists and releases; errors carry gRPC status codes", async () => {
    h = await startHarness([{ disconnectGraceMs: 0 }], { token: "t0k" });
    const channel = createChannel(h.cp.url.replace("http://", ""));
    const client = createClient(herdServiceDefinition() as never, channel) as unknown as Client;
    const auth = { metadata: Metadata({ authorization: "Bearer t0k" }) };
    try {
      const a = await client.AcquireSession({ sessionId: "ng" }, auth);
      expect(a.session).toMatchObject({ sessionId: "ng", pool: "w" });
      expect((await client.GetStats({}, auth)).pools[0]).toMatchObject({ name: "w", sessions: 1 });

      const stop = new AbortController();
      const first = [];
      try {
        for await (const m of client.HoldSession(
          { sessionId: "ng" },
          { ...auth, signal: stop.signal },
        )) {
          first.push(m);
          stop.abort();
        }
      } catch (err) {
        expect((err as Error).name).toBe("AbortError");
      }
      expect(first[0]?.session?.workerPid).toBe(a.session.workerPid);
      expect(first[0]?.holdId.length).toBeGreaterThan(10);

      const status = async (p: Promise<unknown>) =>
        p.then(
          () => Status.OK,
          (e: unknown) => (e instanceof ClientError ? e.code : Status.UNKNOWN),
        );
      expect(await status(client.GetStats({}))).toBe(Status.UNAUTHENTICATED);
      expect(await status(client.AcquireSession({ pool: "nope" }, auth))).toBe(Status.NOT_FOUND);
      expect(await status(client.AcquireSession({ sessionId: "x".repeat(10_240) }, auth))).toBe(
        Status.INVALID_ARGUMENT,
      );
      // The hold ended with its stream, and so did the session (no reconnect window here).
      expect(await status(client.ReleaseSession({ sessionId: "ng" }, auth))).toBe(Status.NOT_FOUND);
    } finally {
      channel.close();
    }
  });
});
