// The CLI's streaming connection to a running daemon (`herd watch`): the generated HerdService
// client over Connect (HTTP/1.1). One-call commands use unary-client.ts instead, which loads
// neither Connect nor, through its use of the Fetch API's Headers, Node's bundled undici.

import {
  type Client,
  Code,
  ConnectError,
  createClient,
  type Interceptor,
} from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { HerdService } from "../../gen/herd/v1/herd_pb.ts";
import { type ClientOptions, daemonAddress } from "./daemon-address.ts";
import { DaemonCallError, describeDaemonError } from "./daemon-error.ts";

export interface HerdClient {
  client: Client<typeof HerdService>;
  /** The address as shown in messages. */
  where: string;
}

export function connectToDaemon(opts: ClientOptions, env = process.env): HerdClient {
  const { baseUrl, socketPath, token, where } = daemonAddress(opts, env);
  const interceptors: Interceptor[] = [];
  if (token) {
    interceptors.push((next) => (req) => {
      req.header.set("authorization", `Bearer ${token}`);
      return next(req);
    });
  }
  const transport = createConnectTransport({
    baseUrl,
    httpVersion: "1.1",
    interceptors,
    ...(socketPath && { nodeOptions: { socketPath } }),
  });
  return { client: createClient(HerdService, transport), where };
}

/** A Connect client's failure as the CLI describes it. */
export function describeClientError(err: unknown, where: string): string {
  const ce = ConnectError.from(err);
  const cause = ce.cause as NodeJS.ErrnoException | undefined;
  const errno = cause?.code ?? (cause?.cause as NodeJS.ErrnoException | undefined)?.code;
  return describeDaemonError(new DaemonCallError(Code[ce.code], ce.rawMessage, errno), where);
}
