// The CLI's connection to a running daemon: the generated HerdService client over Connect
// (HTTP/1.1), addressed by --addr / HERD_ADDR and authorised by --token / HERD_TOKEN.

import {
  type Client,
  Code,
  ConnectError,
  createClient,
  type Interceptor,
} from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { HerdService } from "../../gen/herd/v1/herd_pb.ts";

export const DEFAULT_ADDR = "127.0.0.1:7070";

export interface ClientOptions {
  addr?: string;
  token?: string;
}

export interface HerdClient {
  client: Client<typeof HerdService>;
  /** The address as shown in messages. */
  where: string;
}

/** "127.0.0.1:7070", "http://host:7070" or "unix:/run/herd.sock". */
export function connectToDaemon(opts: ClientOptions, env = process.env): HerdClient {
  const addr = opts.addr ?? env.HERD_ADDR ?? DEFAULT_ADDR;
  const token = opts.token ?? env.HERD_TOKEN;
  const interceptors: Interceptor[] = [];
  if (token) {
    interceptors.push((next) => (req) => {
      req.header.set("authorization", `Bearer ${token}`);
      return next(req);
    });
  }
  const unix = addr.startsWith("unix:") ? addr.slice("unix:".length) : undefined;
  const baseUrl = unix ? "http://localhost" : /^https?:\/\//.test(addr) ? addr : `http://${addr}`;
  const transport = createConnectTransport({
    baseUrl,
    httpVersion: "1.1",
    interceptors,
    ...(unix && { nodeOptions: { socketPath: unix } }),
  });
  return { client: createClient(HerdService, transport), where: unix ? addr : baseUrl };
}

/** One line that says what went wrong talking to the daemon and what to do about it. */
export function describeClientError(err: unknown, where: string): string {
  const ce = ConnectError.from(err);
  const cause = ce.cause as NodeJS.ErrnoException | undefined;
  const errno = cause?.code ?? (cause?.cause as NodeJS.ErrnoException | undefined)?.code;
  if (errno === "ECONNREFUSED" || errno === "ENOENT") {
    return `cannot reach the herd daemon at ${where} (${errno}): is \`herd serve\` running there? Point --addr or HERD_ADDR at it`;
  }
  if (ce.code === Code.Unauthenticated) {
    return `the daemon at ${where} refused the call: ${ce.rawMessage}. Pass --token or set HERD_TOKEN`;
  }
  if (ce.code === Code.Unavailable && errno) {
    return `cannot reach the herd daemon at ${where}: ${errno}`;
  }
  return `${ce.rawMessage} (${Code[ce.code]})`;
}
