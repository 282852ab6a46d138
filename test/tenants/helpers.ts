// What the tenants specs share: a daemon with tenants (real keys from its environment), clients
// holding each key, and one raw HTTP/1.1 exchange on the data plane down either path.

import { connect } from "node:net";
import { Code, ConnectError } from "@connectrpc/connect";
import { expect } from "vitest";
import { herdClient, type Protocol } from "../helpers/control-plane-harness.ts";
import { type Daemon, startDaemon } from "../helpers/daemon.ts";
import { expectNoLeaks, killAllWithTag, newLeakTag } from "../helpers/processes.ts";

export const KEYS = {
  operator: "operator-token-of-this-test-0001",
  acme: "acme-key-0123456789abcdef0123456789abcdef",
  beta: "beta-key-0123456789abcdef0123456789abcdef",
  capped: "capped-key-0123456789abcdef0123456789abcd",
  rated: "rated-key-0123456789abcdef0123456789abcde",
};

export const WORKER = { cmd: ["node", "test/fixtures/worker.mjs"], health_path: "/health" };

export interface TenantDaemon {
  daemon: Daemon;
  tag: string;
  stop(): Promise<void>;
}

/** A daemon with `tenants` (each `key_env: KEY_<NAME>`), the test's leak tag, KEYS in its env. */
export async function startTenantDaemon(
  tenants: Record<string, Record<string, unknown>>,
  extra: Record<string, unknown> = {},
): Promise<TenantDaemon> {
  const leak = newLeakTag();
  const env: Record<string, string> = { ...leak.env, HERD_OP: KEYS.operator };
  for (const [name, key] of Object.entries(KEYS)) env[`KEY_${name.toUpperCase()}`] = key;
  const daemon = await startDaemon({
    config: {
      control: { token_env: "HERD_OP" },
      workers: { web: { ...WORKER, max: 8 }, gpu: { ...WORKER, max: 2 } },
      default_pool: "web",
      tenants,
      ...extra,
    },
    env,
  });
  return {
    daemon,
    tag: leak.tag,
    async stop() {
      const exit = await daemon.stop();
      try {
        await expectNoLeaks(leak.tag);
      } finally {
        killAllWithTag(leak.tag);
      }
      expect(exit, "herd serve shuts down cleanly").toEqual({ code: 0, signal: null });
    },
  };
}

export function clientOf(protocol: Protocol, daemon: Daemon, key: string) {
  return herdClient(protocol, daemon.controlUrl, key);
}

/** The Connect error a call fails with (the test fails if it succeeds). */
export async function failure(p: Promise<unknown>): Promise<ConnectError> {
  try {
    await p;
  } catch (err) {
    return ConnectError.from(err);
  }
  throw new Error("expected the call to fail, it succeeded");
}

export async function code(p: Promise<unknown>): Promise<Code | "ok"> {
  try {
    await p;
    return "ok";
  } catch (err) {
    return ConnectError.from(err).code;
  }
}

export { Code };

export interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * One request on a fresh connection (closed after). `path`: "fast" sends a plain head the
 * fast path takes; "node-http" adds a second Cookie header, which the fast path leaves to
 * node:http (fast-route.ts: repeated routing headers).
 */
export function request(
  daemon: Daemon,
  target: string,
  headers: Record<string, string>,
  path: "fast" | "node-http",
): Promise<Answer> {
  const { hostname, port, host } = new URL(daemon.dataUrl);
  const lines = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`);
  if (path === "node-http") lines.push("Cookie: a=1\r\n", "Cookie: b=2\r\n");
  const head = `GET ${target} HTTP/1.1\r\nHost: ${host}\r\n${lines.join("")}Connection: close\r\n\r\n`;
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => socket.write(head));
    const chunks: Buffer[] = [];
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.on("error", reject);
    socket.on("close", () => {
      const text = Buffer.concat(chunks).toString("latin1");
      const end = text.indexOf("\r\n\r\n");
      const [status, ...fields] = text.slice(0, end).split("\r\n");
      const out: Record<string, string> = {};
      for (const f of fields) {
        const colon = f.indexOf(":");
        out[f.slice(0, colon).toLowerCase()] = f.slice(colon + 1).trim();
      }
      let body = text.slice(end + 4);
      if (out["transfer-encoding"] === "chunked") body = dechunk(body);
      resolve({ status: Number(status!.split(" ")[1]), headers: out, body });
    });
  });
}

function dechunk(s: string): string {
  let out = "";
  for (let at = 0; ; ) {
    const eol = s.indexOf("\r\n", at);
    const size = Number.parseInt(s.slice(at, eol), 16);
    if (!size) return out;
    out += s.slice(eol + 2, eol + 2 + size);
    at = eol + 2 + size + 2;
  }
}
