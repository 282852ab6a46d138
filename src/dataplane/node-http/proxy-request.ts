// Forwards one plain HTTP request to its session's worker and streams the answer back.
//
// Invariants: bodies are piped both ways (backpressure, no buffering); the request runs under
// its client connection's data lease, which outlives it (client-connections.ts);
// exactly one answer reaches the client: the worker's (state "streaming") or one error of
// ours (state "answered"), and the `state` field decides which event gets to answer.
// Retried once: a reused keep-alive socket reset before any response byte, for an
// idempotent request without a body (the worker closed an idle socket as we picked it).

import { type ClientRequest, type IncomingMessage, request, type ServerResponse } from "node:http";
import type { RequestSpan, SessionInfo } from "../../core/index.ts";
import { workerEndpoint } from "../../core/index.ts";
import { BodyDeadline } from "../body-deadline.ts";
import { requestHeadersForWorker, responseHeadersForClient } from "../forward-headers.ts";
import { toWorker } from "../header-rules.ts";
import {
  badGateway,
  bodyTooSlow,
  type DataPlaneError,
  fromError,
  hasBody,
  sendError,
} from "../http-errors.ts";
import { upstreamTarget } from "../peer-forward.ts";
import { endedReason } from "../proxy-context.ts";
import type { Route } from "../route.ts";
import type { Connection } from "../session-access.ts";
import { sessionCookie } from "../session-cookie.ts";
import { dataTimedOut, retryable, workerFailed } from "../worker-faults.ts";
import type { NodeHttpContext } from "./node-http-context.ts";

export function handleRequest(
  ctx: NodeHttpContext,
  req: IncomingMessage,
  res: ServerResponse,
): void {
  let route: Route;
  try {
    route = ctx.web.route(req.url ?? "/", req.headers, ctx.sessionHeader);
  } catch (err) {
    sendError(res, fromError(err));
    return;
  }
  const take = (session: SessionInfo) => ctx.connections.http(req.socket, session);
  ctx.access.open(route, res, take).then(
    (conn) => {
      if (res.destroyed) return;
      new Exchange(ctx, req, res, route, conn).start();
    },
    (err) => {
      if (!res.headersSent && !res.destroyed) sendError(res, fromError(err));
    },
  );
}

class Exchange {
  /** waiting: no answer yet; streaming: worker's answer flows; answered: we sent an error. */
  #state: "waiting" | "streaming" | "answered" = "waiting";
  #upstream: ClientRequest | undefined;
  #response: IncomingMessage | undefined;
  #timer: NodeJS.Timeout | undefined;
  readonly #body: boolean;
  readonly #headers: string[];
  readonly #path: string;
  readonly #onEnded = () => this.#sessionEnded();
  /** Set when tracing is on. */
  readonly #span: RequestSpan | undefined;

  constructor(
    readonly ctx: NodeHttpContext,
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly route: Route,
    readonly conn: Connection,
  ) {
    this.#body = hasBody(req);
    const remoteAddress = req.socket.remoteAddress;
    let traceparent: string | undefined;
    if (ctx.tracer !== undefined) {
      const sent = req.headers;
      this.#span = ctx.tracer.request({
        traceparent: typeof sent.traceparent === "string" ? sent.traceparent : undefined,
        tracestate: Array.isArray(sent.tracestate) ? sent.tracestate.join(",") : sent.tracestate,
        method: req.method ?? "GET",
        target: req.url ?? "/",
        via: "node-http",
        session: conn.session,
        client: remoteAddress,
      });
      traceparent = this.#span.traceparent;
    }
    const to = toWorker(route, remoteAddress, false, traceparent);
    const target = upstreamTarget(conn.session, route, requestHeadersForWorker(req.rawHeaders, to));
    this.#path = target.path;
    this.#headers = target.headers;
  }

  start(): void {
    const { lease } = this.conn;
    this.res.once("close", () => this.#finish());
    if (lease.ended.aborted) {
      this.#sessionEnded();
      return;
    }
    lease.ended.addEventListener("abort", this.#onEnded, { once: true });
    if (this.#body) this.req.once("error", () => this.#upstream?.destroy());
    const { dataTimeoutMs } = this.ctx.directory.poolOptions(this.conn.session.pool);
    if (dataTimeoutMs > 0) {
      this.#timer = setTimeout(() => this.#timedOut(dataTimeoutMs), dataTimeoutMs);
      // Upload progress counts as progress: the deadline is for a worker that stops answering.
      if (this.#body) this.req.on("data", () => this.#timer?.refresh());
    }
    if (this.#body) this.#watchBodyRate();
    this.#send(false);
  }

  /** The body clock starts when herd starts reading it (not while the client waits for a worker). */
  #watchBodyRate(): void {
    const { req } = this;
    const deadline = new BodyDeadline(
      this.ctx.bodyRate,
      () => this.#upstream?.writableNeedDrain === true,
      () => this.#bodyTooSlow(),
    );
    req.on("data", (chunk: Buffer) => deadline.received(chunk.length));
    req.once("end", () => deadline.stop());
    req.once("close", () => deadline.stop());
    deadline.start();
  }

  /** Before the worker answered: 408, then close; after any answer: the connection is cut. */
  #bodyTooSlow(): void {
    const { timeoutMs, minRate } = this.ctx.bodyRate;
    const socket = this.req.socket;
    this.ctx.logger.debug(
      { session: this.conn.session.id, remote: socket.remoteAddress },
      "data plane: request body too slow, cutting it",
    );
    if (this.#state !== "waiting") {
      socket.destroy();
      return;
    }
    this.#fail(bodyTooSlow(timeoutMs, minRate));
    // The 408 says Connection: close; the rest of the body is not waited for.
    if (this.res.writableFinished) socket.destroy();
    else this.res.once("finish", () => socket.destroy());
  }

  #send(isRetry: boolean): void {
    const { session } = this.conn;
    const upstream = request({
      ...workerEndpoint(session.workerAddress),
      method: this.req.method,
      path: this.#path,
      headers: this.#headers,
      agent: this.ctx.agents.agentFor(session, this.req.socket),
      setHost: false,
    });
    this.#upstream = upstream;
    this.ctx.counters.forwarded++;
    upstream.on("response", (response) => this.#respond(upstream, response));
    upstream.on("error", (err: NodeJS.ErrnoException) => {
      if (upstream !== this.#upstream || this.#state !== "waiting") return;
      const method = this.req.method ?? "GET";
      if (!isRetry && retryable(method, this.#body, upstream.reusedSocket, err.code ?? "")) {
        this.#send(true);
        return;
      }
      this.#fail(workerFailed(session, err.code ?? err.message));
    });
    if (this.#body) this.req.pipe(upstream);
    else upstream.end();
  }

  #respond(upstream: ClientRequest, response: IncomingMessage): void {
    if (!upstream.reusedSocket) this.ctx.counters.upstreamConnections++;
    if (this.#state !== "waiting") {
      response.destroy();
      return;
    }
    this.#state = "streaming";
    clearTimeout(this.#timer);
    this.#response = response;
    this.#span?.status(response.statusCode ?? 502);
    const headers = responseHeadersForClient(response.rawHeaders);
    const cookie = sessionCookie(this.route, this.conn.session);
    if (cookie !== undefined) headers.push("Set-Cookie", cookie);
    this.res.writeHead(response.statusCode ?? 502, response.statusMessage, headers);
    // A worker dying mid-body: the client must see a broken response, not a short one.
    response.once("error", () => this.res.destroy());
    response.once("close", () => {
      if (!response.complete) this.res.destroy();
    });
    response.pipe(this.res);
  }

  /** Our own answer, when the worker's never started. */
  #fail(error: DataPlaneError): void {
    if (this.#state !== "waiting") return;
    this.#state = "answered";
    clearTimeout(this.#timer);
    this.#upstream?.destroy();
    if (this.res.headersSent || this.res.destroyed) return;
    this.#span?.status(error.status);
    sendError(this.res, error);
  }

  #timedOut(ms: number): void {
    if (this.#state !== "waiting") return;
    dataTimedOut(this.ctx, this.conn.session, ms, (error) => this.#fail(error));
  }

  #sessionEnded(): void {
    if (this.#state === "streaming") {
      this.#upstream?.destroy();
      this.res.destroy();
      return;
    }
    this.#fail(badGateway(endedReason(this.conn.lease.ended)));
  }

  /** The client response closed (completed or aborted): drop the upstream side. */
  #finish(): void {
    clearTimeout(this.#timer);
    this.conn.lease.ended.removeEventListener("abort", this.#onEnded);
    const response = this.#response;
    const cut = this.#state === "waiting" || (response !== undefined && !response.complete);
    this.#span?.end(cut ? "the answer was cut short (the worker or the client failed)" : undefined);
    if (cut) {
      this.#state = "answered";
      this.#upstream?.destroy();
    }
  }
}
