// For the control plane's specs: a real Herd of test/fixtures/worker.mjs workers and a real
// control plane on a free loopback port, every worker tagged for leak checks. close() shuts
// both down and proves no worker survived.

import { type Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import { HerdService } from "../../gen/herd/v1/herd_pb.ts";
import {
  Herd,
  type HerdOptions,
  type PoolOptionsInput,
  resolvePoolOptions,
} from "../../src/pool/index.ts";
import {
  type ControlPlane,
  type ControlPlaneOptions,
  startControlPlane,
} from "../../src/server/index.ts";
import { expectNoLeaks, killAllWithTag, newLeakTag } from "./processes.ts";
import { WORKER_FIXTURE } from "./worker.ts";

export interface Harness {
  herd: Herd;
  cp: ControlPlane;
  tag: string;
  close(): Promise<void>;
}

export async function startHarness(
  pools: Partial<PoolOptionsInput>[] = [{}],
  cpOpts: Partial<ControlPlaneOptions> = {},
  herdOpts: HerdOptions = {},
): Promise<Harness> {
  const { tag, env } = newLeakTag();
  const herd = await Herd.start(
    pools.map((p, i) =>
      resolvePoolOptions({
        name: i === 0 ? "w" : `w${i}`,
        command: [process.execPath, WORKER_FIXTURE],
        healthPath: "/health",
        min: 0,
        max: 4,
        ...p,
        env: { ...env, ...p.env },
      }),
    ),
    herdOpts,
  );
  let cp: ControlPlane;
  try {
    cp = await startControlPlane(herd, {
      listen: "127.0.0.1:0",
      dataPlaneUrl: "http://127.0.0.1:9",
      logs: herd,
      ...cpOpts,
    });
  } catch (err) {
    await herd.close();
    throw err;
  }
  return {
    herd,
    cp,
    tag,
    async close() {
      try {
        await cp.close();
        await herd.close();
        await expectNoLeaks(tag);
      } finally {
        killAllWithTag(tag);
      }
    },
  };
}

export type Protocol = "connect-h1" | "connect-h2" | "grpc" | "grpc-web";
export const PROTOCOLS: readonly Protocol[] = ["connect-h1", "connect-h2", "grpc", "grpc-web"];

export function transportFor(protocol: Protocol, baseUrl: string, token?: string) {
  const bearer: Interceptor = (next) => (req) => {
    req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };
  const interceptors = token ? [bearer] : [];
  switch (protocol) {
    case "connect-h1":
      return createConnectTransport({ baseUrl, httpVersion: "1.1", interceptors });
    case "connect-h2":
      return createConnectTransport({ baseUrl, httpVersion: "2", interceptors });
    case "grpc":
      return createGrpcTransport({ baseUrl, interceptors });
    case "grpc-web":
      return createGrpcWebTransport({ baseUrl, httpVersion: "1.1", interceptors });
  }
}

export function herdClient(protocol: Protocol, baseUrl: string, token?: string) {
  return createClient(HerdService, transportFor(protocol, baseUrl, token));
}

/** The code a call ends with: "ok", or its error's Connect code. */
export async function codeOf(p: Promise<unknown>): Promise<Code | "ok"> {
  try {
    await p;
    return "ok";
  } catch (err) {
    return ConnectError.from(err).code;
  }
}

/** The code a stream finally ends with, after any messages still in flight. */
export async function streamEndCode(it: AsyncIterator<unknown>): Promise<Code | "ok"> {
  for (;;) {
    try {
      if ((await it.next()).done) return "ok";
    } catch (err) {
      return ConnectError.from(err).code;
    }
  }
}
