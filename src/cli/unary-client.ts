// The CLI's client for one-call commands (status, sessions, cluster status): each call is one
// Connect-protocol unary request with a JSON body over node:http, decoded with the generated
// schema. The Connect runtime costs a one-call command about a third of its start-up (its
// Headers load Node's bundled undici, ~20 ms); the protocol for one unary JSON call is small
// and stable: POST /<service>/<method>, the request as JSON, the response as JSON, or an error
// as {"code", "message"} with an HTTP status (connectrpc.com/docs/protocol). Streams stay on
// Connect's own client (client.ts).

import type { IncomingMessage } from "node:http";
import {
  create,
  type DescMessage,
  type DescMethodUnary,
  fromJson,
  type MessageInitShape,
  type MessageShape,
  toJson,
} from "@bufbuild/protobuf";
import type { Client } from "@connectrpc/connect";
import { HerdService } from "../../gen/herd/v1/herd_pb.ts";
import { type ClientOptions, type DaemonAddress, daemonAddress } from "./daemon-address.ts";
import { DaemonCallError } from "./daemon-error.ts";

/** The unary calls the one-call commands make, typed as Connect's client types them. */
export type UnaryCalls = Pick<
  Client<typeof HerdService>,
  "getStats" | "listSessions" | "drainNode" | "restartNode"
>;

export interface UnaryClient {
  client: UnaryCalls;
  /** The address as shown in messages. */
  where: string;
}

export function unaryClient(opts: ClientOptions, env = process.env): UnaryClient {
  const daemon = daemonAddress(opts, env);
  return {
    client: {
      getStats: (req) => call(daemon, HerdService.method.getStats, req),
      listSessions: (req) => call(daemon, HerdService.method.listSessions, req),
      drainNode: (req) => call(daemon, HerdService.method.drainNode, req),
      restartNode: (req) => call(daemon, HerdService.method.restartNode, req),
    },
    where: daemon.where,
  };
}

/** Connect's code for an error response without a Connect error body (a proxy's, say). */
function codeForStatus(status: number): string {
  if (status === 400) return "internal";
  if (status === 401) return "unauthenticated";
  if (status === 403) return "permission_denied";
  if (status === 404) return "unimplemented";
  if ([429, 502, 503, 504].includes(status)) return "unavailable";
  return "unknown";
}

/** "not_found" as Connect's Code enum names it: "NotFound". */
const codeName = (code: string) =>
  code.replace(/(^|_)([a-z])/g, (_, __, c: string) => c.toUpperCase());

async function call<I extends DescMessage, O extends DescMessage>(
  daemon: DaemonAddress,
  method: DescMethodUnary<I, O>,
  req: MessageInitShape<I>,
): Promise<MessageShape<O>> {
  const url = new URL(`${method.parent.typeName}/${method.name}`, `${daemon.baseUrl}/`);
  const body = JSON.stringify(toJson(method.input, create(method.input, req)));
  const { request } = await import(url.protocol === "https:" ? "node:https" : "node:http");
  const res = await new Promise<{ status: number; text: string }>((resolve, reject) => {
    const r = request(
      url,
      {
        method: "POST",
        ...(daemon.socketPath && { socketPath: daemon.socketPath }),
        headers: {
          "content-type": "application/json",
          "connect-protocol-version": "1",
          "content-length": Buffer.byteLength(body),
          ...(daemon.token && { authorization: `Bearer ${daemon.token}` }),
        },
      },
      (response: IncomingMessage) => {
        let text = "";
        response.setEncoding("utf8");
        response.on("data", (chunk: string) => {
          text += chunk;
        });
        response.on("end", () => resolve({ status: response.statusCode ?? 0, text }));
        response.on("error", (err: NodeJS.ErrnoException) =>
          reject(new DaemonCallError("Unavailable", err.message, err.code)),
        );
      },
    );
    r.on("error", (err: NodeJS.ErrnoException) =>
      reject(new DaemonCallError("Unavailable", err.message, err.code)),
    );
    r.end(body);
  });
  let json: unknown;
  try {
    json = JSON.parse(res.text);
  } catch {
    json = undefined;
  }
  if (res.status !== 200) {
    const e = (json ?? {}) as { code?: unknown; message?: unknown };
    const code = typeof e.code === "string" ? e.code : codeForStatus(res.status);
    const message = typeof e.message === "string" ? e.message : `HTTP ${res.status}`;
    throw new DaemonCallError(codeName(code), message);
  }
  if (json === undefined) {
    throw new DaemonCallError(
      "Internal",
      `the daemon's answer is not JSON: ${res.text.slice(0, 80)}`,
    );
  }
  try {
    return fromJson(method.output, json as Parameters<typeof fromJson>[1], {
      ignoreUnknownFields: true,
    });
  } catch (err) {
    throw new DaemonCallError(
      "Internal",
      `the daemon's answer does not decode: ${(err as Error).message}`,
    );
  }
}
