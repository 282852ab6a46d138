// Who is calling, as the caps on what one caller may hold open (caller-limits.ts) count it.
// The one place that decides it: every handler asks `callerOf(ctx)`, nothing else looks at
// the connection. A tenant key's calls are that tenant's, whatever the address; the others
// are the client's address (TCP) or the local Unix socket's, so the SDK instances of one host
// share their caps and another host has its own. A node-to-node call is nobody's: the node
// that took the client's call counted it there.
//
// Stateless: the address is read from the request once, into its context values.

import type { IncomingMessage } from "node:http";
import type { Http2ServerRequest } from "node:http2";
import { createContextKey, createContextValues, type HandlerContext } from "@connectrpc/connect";
import { CALLER, PEER_NODE } from "./interceptors.ts";

/** Where the call came from: the remote IP address, or "unix socket". */
const CLIENT_ADDRESS = createContextKey<string>("unknown", { description: "client address" });

/** connectNodeAdapter's `contextValues`: records each request's client address. */
export function callerContext(req: IncomingMessage | Http2ServerRequest) {
  const values = createContextValues();
  values.set(CLIENT_ADDRESS, req.socket?.remoteAddress ?? "unix socket");
  return values;
}

/** The caller a call counts against, or undefined for a call no cap applies to (a peer node's). */
export function callerOf(ctx: Pick<HandlerContext, "values">): string | undefined {
  if (ctx.values.get(PEER_NODE) !== undefined) return undefined;
  const caller = ctx.values.get(CALLER);
  // "tenant " cannot be an address: a tenant's count never meets a host's.
  return caller.kind === "tenant" ? `tenant ${caller.name}` : ctx.values.get(CLIENT_ADDRESS);
}
