// Reflection, proved with grpcurl (no .proto files given to it) and with the generated client.
// grpcurl comes from scripts/setup-grpcurl.sh (into .tools/bin).

import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { createFileRegistry, fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { createClient } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ServerReflection } from "../../gen/grpc/reflection/v1/reflection_pb.ts";
import {
  type Harness,
  startHarness,
  transportFor,
} from "../../test/helpers/control-plane-harness.ts";

const GRPCURL = fileURLToPath(new URL("../../.tools/bin/grpcurl", import.meta.url));
const run = promisify(execFile);

let h: Harness;
beforeAll(async () => {
  h = await startHarness([{}], { token: "tok" });
});
afterAll(() => h.close());

/** `@` in args stands for the daemon's address. */
async function grpcurl(...args: string[]): Promise<{ code: number; out: string }> {
  if (!existsSync(GRPCURL)) {
    throw new Error(`grpcurl is not installed at ${GRPCURL}: run scripts/setup-grpcurl.sh`);
  }
  const addr = h.cp.url.replace("http://", "");
  const argv = [
    "-plaintext",
    "-H",
    "authorization: Bearer tok",
    ...args.map((a) => (a === "@" ? addr : a)),
  ];
  try {
    const { stdout, stderr } = await run(GRPCURL, argv, { timeout: 15_000 });
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, out: e.stdout + e.stderr };
  }
}

describe("grpcurl through reflection, with no .proto files", () => {
  it("lists every service", async () => {
    const r = await grpcurl("@", "list");
    expect(r.code).toBe(0);
    expect(r.out.trim().split("\n").sort()).toEqual([
      "grpc.health.v1.Health",
      "grpc.reflection.v1.ServerReflection",
      "herd.v1.HerdService",
    ]);
  });

  it("describes the API", async () => {
    const r = await grpcurl("@", "describe");
    expect(r.out).toContain(
      "rpc AcquireSession ( .herd.v1.AcquireSessionRequest ) returns ( .herd.v1.AcquireSessionResponse );",
    );
    expect(r.out).toContain(
      "rpc HoldSession ( .herd.v1.HoldSessionRequest ) returns ( stream .herd.v1.HoldSessionResponse );",
    );
    const msg = await grpcurl("@", "describe", "herd.v1.Session");
    expect(msg.out).toContain("string session_id = 1;");
  });

  it("calls Health/Check and AcquireSession", async () => {
    const health = await grpcurl("@", "grpc.health.v1.Health/Check");
    expect(JSON.parse(health.out)).toEqual({ status: "SERVING" });
    const acquired = await grpcurl(
      "-d",
      '{"sessionId": "via-grpcurl", "labels": {"tool": "grpcurl"}}',
      "@",
      "herd.v1.HerdService/AcquireSession",
    );
    expect(acquired.code).toBe(0);
    const session = JSON.parse(acquired.out).session;
    expect(session).toMatchObject({
      sessionId: "via-grpcurl",
      pool: "w",
      labels: { tool: "grpcurl" },
    });
    expect(h.herd.lookup("via-grpcurl")?.workerPid).toBe(session.workerPid);
  });

  it("shows herd's error codes", async () => {
    const r = await grpcurl("-d", '{"pool": "nope"}', "@", "herd.v1.HerdService/AcquireSession");
    expect(r.code).not.toBe(0);
    expect(r.out).toContain("Code: NotFound");
    expect(r.out).toContain('unknown pool "nope"');
  });
});

describe("ServerReflection with the generated client", () => {
  it("returns parseable descriptors with their dependencies, and errors for unknown symbols", async () => {
    const client = createClient(ServerReflection, transportFor("grpc", h.cp.url, "tok"));
    async function* requests() {
      yield {
        messageRequest: {
          case: "fileContainingSymbol" as const,
          value: "herd.v1.HerdService.AcquireSession",
        },
      };
      yield {
        messageRequest: { case: "fileByFilename" as const, value: "grpc/health/v1/health.proto" },
      };
      yield { messageRequest: { case: "fileContainingSymbol" as const, value: "no.such.Thing" } };
    }
    const answers = [];
    for await (const r of client.serverReflectionInfo(requests())) answers.push(r);
    expect(answers).toHaveLength(3);
    const [herd, health, missing] = answers;
    expect(herd!.messageResponse.case).toBe("fileDescriptorResponse");
    const files = (
      herd!.messageResponse.value as { fileDescriptorProto: Uint8Array[] }
    ).fileDescriptorProto.map((b) => fromBinary(FileDescriptorProtoSchema, b));
    expect(files.map((f) => f.name)).toEqual([
      "herd/v1/herd.proto",
      "google/protobuf/duration.proto",
      "google/protobuf/timestamp.proto",
    ]);
    const registry = createFileRegistry({
      $typeName: "google.protobuf.FileDescriptorSet",
      file: files.reverse(),
    });
    expect(registry.getService("herd.v1.HerdService")?.methods.map((m) => m.name)).toContain(
      "WatchSessions",
    );
    expect(health!.messageResponse.case).toBe("fileDescriptorResponse");
    expect(missing!.messageResponse).toMatchObject({
      case: "errorResponse",
      value: { errorCode: 5 },
    });
  });
});
