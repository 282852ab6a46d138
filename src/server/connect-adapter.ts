// The control plane's Connect handler for node:http and node:http2 requests: what
// @connectrpc/connect-node's connectNodeAdapter does, minus its per-call waste. Each call's
// request signal there is an AbortController aborted, without a reason, when the response
// closes, also after a call that finished normally; Node builds a DOMException with its stack
// for every such abort. Here the request signal aborts only when the client goes away before
// the answer is complete (the one case a handler must hear of), with a Canceled error made
// then. The body is the request stream itself (connect-node wraps it in an async generator
// that yields what the stream yields) and the URL is joined, not parsed.
//
// Stateless: the router's handlers are looked up by path; each call's state lives in its
// closure until its response closes.

import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import {
  Code,
  ConnectError,
  type ConnectRouter,
  type ConnectRouterOptions,
  type ContextValues,
  createConnectRouter,
} from "@connectrpc/connect";
import type { UniversalServerRequest } from "@connectrpc/connect/protocol";
import {
  compressionBrotli,
  compressionGzip,
  universalResponseToNodeResponse,
} from "@connectrpc/connect-node";

type NodeRequest = IncomingMessage | Http2ServerRequest;
type NodeResponse = ServerResponse | Http2ServerResponse;

export interface ConnectAdapterOptions extends ConnectRouterOptions {
  routes: (router: ConnectRouter) => void;
  /** Requests no RPC path matches. */
  fallback: (req: NodeRequest, res: NodeResponse) => void;
  contextValues: (req: NodeRequest) => ContextValues;
  /** A handler that failed outside the call (its answer could not be written). */
  onError: (rpc: string, err: unknown) => void;
}

export function connectAdapter(
  options: ConnectAdapterOptions,
): (req: NodeRequest, res: NodeResponse) => void {
  const router = createConnectRouter({
    acceptCompression: [compressionGzip, compressionBrotli],
    ...options,
  });
  options.routes(router);
  const paths = new Map(router.handlers.map((h) => [h.requestPath, h]));
  return (req, res) => {
    const url = req.url ?? "";
    const query = url.indexOf("?");
    const handler = paths.get(query < 0 ? url : url.slice(0, query));
    if (!handler) {
      options.fallback(req, res);
      return;
    }
    let uReq: UniversalServerRequest;
    try {
      uReq = universalRequest(req, res, url, options.contextValues(req));
    } catch (err) {
      res.writeHead(400, { "content-type": "text/plain" });
      res.end(`${(err as Error).message}\n`);
      return;
    }
    handler(uReq)
      .then((uRes) => universalResponseToNodeResponse(uRes, res))
      .catch((err: unknown) => {
        if (ConnectError.from(err).code === Code.Aborted) return;
        options.onError(`${handler.service.typeName}/${handler.method.name}`, err);
      });
  };
}

/** A request as Connect's handlers take it; exported for its spec. */
export function universalRequest(
  req: NodeRequest,
  res: NodeResponse,
  url: string,
  contextValues: ContextValues,
): UniversalServerRequest {
  const authority = "authority" in req ? req.authority : req.headers.host;
  if (authority === undefined) {
    throw new ConnectError("the request names no authority (Host)", Code.InvalidArgument);
  }
  const header = new Headers();
  for (const name in req.headers) {
    if (name.charCodeAt(0) === 58 /* ":", an HTTP/2 pseudo-header */) continue;
    const value = req.headers[name];
    if (typeof value === "string") header.append(name, value);
    else if (value !== undefined) for (const v of value) header.append(name, v);
  }
  const gone = new AbortController();
  // HTTP/1.1: the response's close (the request's fires once its body is read); HTTP/2: the
  // stream's. Either way, a response that ended first was a call that finished.
  const closing: NodeRequest | NodeResponse = "stream" in req ? req : res;
  closing.once("close", () => {
    if (res.writableEnded) return;
    const cause = req.errored ?? undefined;
    gone.abort(
      new ConnectError("the client went away before the answer", Code.Canceled, {}, [], cause),
    );
  });
  const encrypted = "encrypted" in req.socket && req.socket.encrypted === true;
  return {
    httpVersion: req.httpVersion,
    method: req.method ?? "",
    url: `${encrypted ? "https" : "http"}://${authority}${url}`,
    header,
    body: req,
    signal: gone.signal,
    contextValues,
  };
}
