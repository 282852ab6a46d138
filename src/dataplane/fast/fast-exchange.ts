// One request/response of the fast path (fast-connection.ts): writes the request head for the
// worker, forwards the body bytes verbatim by their framing (body-cursor.ts), parses the
// worker's response head, writes the rewritten head to the client and forwards the response
// body verbatim by its framing. Header rewriting, routing, tokens, leases, data_timeout, the body deadline and the
// retry rule are the node:http path's own functions (forward-headers.ts, worker-faults.ts...).
//
// Invariants: exactly one answer reaches the client — the worker's (phase "body") or one error
// of ours (only in phase "head", before any final head was written; it closes the connection);
// a worker failing after its head was forwarded cuts the client connection, never a short
// response. Backpressure both ways: a side whose write() returned false stops the other side
// from reading until 'drain'. Nothing is buffered beyond one response head and the bytes of
// one read. The upstream connection is handed back for reuse only when both messages ended
// exactly at their framing's end; a client that leaves while its answer is on the way leaves
// it to be read (bounded) and dropped, so that connection is kept too. Single-threaded;
// `#phase` decides which event may answer.

import type { Socket } from "node:net";
import type { RequestSpan, SessionInfo } from "../../core/index.ts";
import { BodyDeadline } from "../body-deadline.ts";
import { requestTrailersForWorker, responseHeadersForClient } from "../forward-headers.ts";
import { toWorker } from "../header-rules.ts";
import {
  badGateway,
  bodyTooSlow,
  type DataPlaneError,
  protocolError,
  writeErrorToSocket,
} from "../http-errors.ts";
import type { RequestScan } from "../http1/request-head.ts";
import { type ResponseScan, scanResponseHead } from "../http1/response-head.ts";
import { upstreamTarget } from "../peer-forward.ts";
import { endedReason } from "../proxy-context.ts";
import type { Route } from "../route.ts";
import type { Connection } from "../session-access.ts";
import { sessionCookie } from "../session-cookie.ts";
import { dataTimedOut, retryable, workerFailed } from "../worker-faults.ts";
import { BodyCursor } from "./body-cursor.ts";
import type { FastContext } from "./fast-context.ts";
import { clientResponseHead, workerRequestHead } from "./head-rewrite.ts";
import type { LazyDeadline } from "./lazy-deadline.ts";
import type { PinnedUpstream, UpstreamSink } from "./pinned-upstream.ts";
import { tracedRequest } from "./traced-head.ts";

/** The client connection, as one exchange sees it. */
export interface ExchangeHost {
  readonly ctx: FastContext;
  readonly socket: Socket;
  readonly maxHeadBytes: number;
  /**
   * The pinned upstream connection to `address` if idle and open, else a parked or new one
   * (`fresh`: always new); `shareable`: may serve other client connections after this one.
   */
  upstream(address: string, fresh: boolean, shareable: boolean): PinnedUpstream;
  /** The client's read buffer holds bytes a write still queues: the next read needs a new one. */
  retainedRead(): void;
  /** Upload backpressure: stop / restart reading the client. */
  pauseClient(): void;
  resumeClient(): void;
  /** `upstream` is no longer the connection's (an exchange drains it after the client left). */
  disown(upstream: PinnedUpstream): void;
  /** The exchange is over; `keepAlive` false: the client connection is (being) closed. */
  done(keepAlive: boolean): void;
  /** Calls the current exchange's sessionEnded when `ended` aborts (one listener a lease). */
  watchSession(ended: AbortSignal): void;
  /** data_timeout of the exchange in hand: calls its dataTimedOut when it passes. */
  readonly dataDeadline: LazyDeadline;
}

/** The lines of ours after a response's kept fields: by chunked framing, then by keep-alive. */
const FRAMING = [false, true].map((chunked) =>
  [false, true].map((keepAlive) =>
    Buffer.from(
      `${chunked ? "Transfer-Encoding: chunked\r\n" : ""}${
        keepAlive ? "Connection: keep-alive\r\nKeep-Alive: timeout=5\r\n" : "Connection: close\r\n"
      }`,
      "latin1",
    ),
  ),
);
const NO_LINES = Buffer.alloc(0);

// The fields of ours last in a request head, by its body's framing: forward-headers drops
// Transfer-Encoding (node:http re-frames bodies); here the chunks go through verbatim, so their
// framing is declared again. Constants: no array built per request.
const KEEP_ALIVE: readonly string[] = ["Connection", "keep-alive"];
const CHUNKED_KEEP_ALIVE: readonly string[] = [
  "Transfer-Encoding",
  "chunked",
  "Connection",
  "keep-alive",
];

function headWithBody(head: HeadOut, body: Buffer): Buffer {
  return clientResponseHead(head.buf, head.scan, head.framing, body);
}

/** A final response head as scanned, to go out with the first body bytes. */
interface HeadOut {
  buf: Buffer;
  scan: ResponseScan;
  framing: Buffer;
}

/** How long, and how many bytes, an answer is read for nobody to keep its upstream connection. */
const DRAIN_MS = 1_000;
const DRAIN_MAX_BYTES = 256 * 1024;

export class FastExchange implements UpstreamSink {
  /** head: no final response head yet; body: the worker's answer flows; done: over. */
  #phase: "head" | "body" | "done" = "head";
  #upstream: PinnedUpstream;
  #retried = false;
  /** Any byte of a response arrived (a retry is safe only before). */
  #answered = false;
  #pendingHead: Buffer | undefined;
  #response: BodyCursor | undefined;
  #responseKeepAlive = false;
  #closeFramed = false;
  /** Set once the client left mid-answer: bytes of the answer still allowed to be dropped. */
  #draining: number | undefined;
  #drainTimer: NodeJS.Timeout | undefined;
  /** data_timeout, 0: none. */
  #dataTimeoutMs = 0;
  #deadline: BodyDeadline | undefined;
  readonly #request: BodyCursor;
  readonly #hasBody: boolean;
  #requestHead: string;
  readonly #session: SessionInfo;
  /** The Set-Cookie line herd adds to the answer (session-cookie.ts), if any. */
  readonly #cookie: string | undefined;
  /** Set when tracing is on. */
  readonly #span: RequestSpan | undefined;

  constructor(
    readonly host: ExchangeHost,
    buf: Buffer,
    /** The request head decoded (latin1). */
    text: string,
    readonly head: RequestScan,
    route: Route,
    readonly conn: Connection,
  ) {
    this.#session = conn.session;
    this.#cookie = sessionCookie(route, conn.session);
    this.#request = new BodyCursor(head.body, requestTrailersForWorker);
    this.#hasBody = !this.#request.done;
    this.#upstream = host.upstream(
      this.#session.workerAddress,
      false,
      this.#session.peer === undefined,
    );
    // The path, and the fields a forward to a peer adds after the client's and ours.
    const target = upstreamTarget(conn.session, route, [], this.#credentialOf(this.#upstream));
    const framing = head.body.kind === "chunked" ? CHUNKED_KEEP_ALIVE : KEEP_ALIVE;
    const extra = target.headers.length === 0 ? framing : [...target.headers, ...framing];
    const remoteAddress = host.socket.remoteAddress;
    const tracer = host.ctx.tracer;
    let traceparent: string | undefined;
    if (tracer !== undefined) {
      this.#span = tracer.request(tracedRequest(buf, text, head, conn.session, remoteAddress));
      traceparent = this.#span.traceparent;
    }
    const to = toWorker(route, remoteAddress, false, traceparent);
    this.#requestHead = workerRequestHead(buf, text, head, target.path, to, extra);
  }

  /** A peer's upstream connection sends the credential it was opened with on every request. */
  #credentialOf(upstream: PinnedUpstream): string | undefined {
    const { peer } = this.#session;
    if (peer === undefined) return undefined;
    upstream.peerCredential ??= peer.credential();
    return upstream.peerCredential;
  }

  get requestDone(): boolean {
    return this.#request.done;
  }

  /** Sends the head and the body bytes that came with it; returns bytes past the body. */
  start(initial: Buffer | undefined): Buffer | undefined {
    const { ctx } = this.host;
    ctx.counters.forwarded++;
    ctx.counters.fastForwarded++;
    this.host.watchSession(this.conn.lease.ended);
    this.#dataTimeoutMs = ctx.directory.poolOptions(this.#session.pool).dataTimeoutMs;
    if (this.#dataTimeoutMs > 0) this.host.dataDeadline.set(this.#dataTimeoutMs);
    if (this.#hasBody) {
      this.#deadline = new BodyDeadline(
        ctx.bodyRate,
        () => this.#upstream.socket.writableNeedDrain,
        () => this.#bodyTooSlow(),
      );
      this.#deadline.start();
    }
    this.#upstream.attach(this);
    const socket = this.#upstream.socket;
    if (initial === undefined) {
      socket.write(this.#requestHead, "latin1");
      return undefined;
    }
    // The head and the body bytes that came with it go in one writev.
    socket.cork();
    socket.write(this.#requestHead, "latin1");
    const rest = this.clientData(initial);
    socket.uncork();
    return rest;
  }

  /** Request body bytes from the client; returns the bytes past the body (the next request). */
  clientData(chunk: Buffer): Buffer | undefined {
    if (this.#request.done) return chunk;
    const n = this.#request.take(chunk);
    if (n === "invalid") {
      this.#fail(protocolError(400, "malformed request: invalid chunked body"));
      return undefined;
    }
    if (this.#phase !== "done" && n > 0) {
      const part = this.#request.outgoing(chunk, n);
      this.#deadline?.received(n);
      // Upload progress counts as progress: the deadline is for a worker that stops answering.
      if (this.#phase === "head" && this.#dataTimeoutMs > 0) {
        this.host.dataDeadline.set(this.#dataTimeoutMs);
      }
      if (part.length > 0) {
        const upstream = this.#upstream.socket;
        if (!upstream.write(part)) this.host.pauseClient();
        // Bytes the upstream socket could not send at once (or holds corked) may point into the read buffer.
        if (upstream.writableLength > 0) this.host.retainedRead();
      }
    }
    if (this.#request.done) this.#deadline?.stop();
    return n < chunk.length ? chunk.subarray(n) : undefined;
  }

  /** The client half-closed: fine after its request, an abort in the middle of its body. */
  clientEnded(): void {
    if (!this.#request.done) this.#cut();
  }

  /**
   * The client connection closed. A whole request to a local worker: its answer is read to
   * its end (briefly, and only so much) and dropped, so the upstream connection can serve the
   * next client — a load generator stopping, or a browser leaving, costs no reconnect.
   */
  clientClosed(mayDrain: boolean): void {
    if (this.#phase === "done") return;
    this.#cleanup();
    this.#span?.end("the client closed its connection before the whole answer");
    if (!mayDrain || !this.#request.done || !this.#upstream.shareable) {
      this.#phase = "done";
      this.#upstream.destroy();
      return;
    }
    this.#draining = DRAIN_MAX_BYTES;
    this.host.disown(this.#upstream);
    this.#drainTimer = setTimeout(() => this.#abandon(), DRAIN_MS);
  }

  clientDrained(): void {
    if (this.#phase === "body") this.#upstream.socket.resume();
  }

  // ---- UpstreamSink ----

  drain(): void {
    this.host.resumeClient();
  }

  data(chunk: Buffer): void {
    this.#answered = true;
    if (this.#draining !== undefined) {
      this.#draining -= chunk.length;
      if (this.#draining < 0) {
        this.#abandon();
        return;
      }
    }
    if (this.#phase === "body") this.#responseBody(chunk);
    else if (this.#phase === "head") this.#responseHead(chunk);
  }

  closed(code: string): void {
    if (this.#phase === "body") {
      if (this.#closeFramed) this.#complete(false);
      else this.#cut();
      return;
    }
    if (this.#phase !== "head") return;
    const reused = this.#upstream.served > 0;
    if (
      this.#draining === undefined &&
      !this.#answered &&
      !this.#retried &&
      retryable(this.head.method, this.#hasBody, reused, code)
    ) {
      this.#retried = true;
      const was = this.#upstream.peerCredential;
      this.#upstream = this.host.upstream(
        this.#session.workerAddress,
        true,
        this.#session.peer === undefined,
      );
      // A new connection to a peer opens with a credential of its own.
      const now = this.#credentialOf(this.#upstream);
      if (was !== undefined && now !== undefined) {
        this.#requestHead = this.#requestHead.replace(was, now);
      }
      this.#upstream.attach(this);
      this.#upstream.socket.write(this.#requestHead, "latin1");
      return;
    }
    this.#fail(workerFailed(this.#session, code));
  }

  // ---- the response ----

  #responseHead(chunk: Buffer): void {
    let buf = this.#pendingHead ? Buffer.concat([this.#pendingHead, chunk]) : chunk;
    this.#pendingHead = undefined;
    for (;;) {
      const r = scanResponseHead(buf, 0, this.host.maxHeadBytes, this.head.method);
      if (r === "incomplete") {
        // A split head waits for the next read: it must not stay in the read buffer.
        this.#pendingHead = Buffer.from(buf);
        return;
      }
      if (r === "invalid" || r === "too-large") {
        this.#fail(workerFailed(this.#session, `${r} response head`));
        return;
      }
      const rest = buf.subarray(r.headBytes);
      if (r.status === 101) {
        this.#fail(workerFailed(this.#session, "101 Switching Protocols to a plain request"));
        return;
      }
      if (r.status < 200) {
        // Interim (100, 103...): forwarded as is; the final answer follows.
        this.#toClient(clientResponseHead(buf, r, NO_LINES, NO_LINES));
        if (rest.length === 0) return;
        buf = rest;
        continue;
      }
      this.#phase = "body";
      this.#span?.status(r.status);
      this.host.dataDeadline.clear();
      this.#response = new BodyCursor(r.body, responseHeadersForClient);
      this.#responseKeepAlive = r.keepAlive;
      this.#closeFramed = r.body.kind === "close";
      const keepClient = this.head.keepAlive && !this.#closeFramed;
      const framing = FRAMING[r.body.kind === "chunked" ? 1 : 0]![keepClient ? 1 : 0]!;
      const cookie = this.#cookie;
      this.#responseBody(rest, {
        buf,
        scan: r,
        framing:
          cookie === undefined
            ? framing
            : Buffer.concat([Buffer.from(`Set-Cookie: ${cookie}\r\n`, "latin1"), framing]),
      });
      return;
    }
  }

  /** Forwards the body bytes in `chunk`; `head`: the response head, to go in the same write. */
  #responseBody(chunk: Buffer, head?: HeadOut): void {
    const response = this.#response!;
    const n = response.take(chunk);
    if (n === "invalid") {
      if (head !== undefined) this.#toClient(headWithBody(head, NO_LINES));
      this.#cut();
      return;
    }
    if (n > 0 || head !== undefined) {
      // One write (one syscall) per read: a head and its first body bytes travel together.
      const part = response.outgoing(chunk, n);
      const out = head === undefined ? part : headWithBody(head, part);
      if (!this.#toClient(out)) this.#upstream.socket.pause();
      // Bytes the client socket could not send at once still point into the read buffer.
      if (out === part && this.host.socket.writableLength > 0) this.#upstream.retained();
    }
    if (response.done) this.#complete(this.#responseKeepAlive && n === chunk.length);
  }

  /** The response ended at its framing's end; `reusable`: so did the upstream's bytes. */
  #complete(reusable: boolean): void {
    this.#phase = "done";
    this.#span?.end();
    this.#cleanup();
    const requestDone = this.#request.done;
    if (reusable && requestDone) this.#upstream.served++;
    this.#upstream.detach(reusable && requestDone);
    if (this.#draining !== undefined) {
      if (reusable) this.host.ctx.park.park(this.#upstream);
      return;
    }
    // A worker that answered before the whole body arrived: the rest of it is not read.
    this.host.done(requestDone && this.head.keepAlive && !this.#closeFramed);
  }

  // ---- failures ----

  /** Our own answer instead of the worker's: possible only before its final head. */
  #fail(error: DataPlaneError): void {
    if (this.#phase !== "head" || this.#draining !== undefined) {
      this.#cut();
      return;
    }
    this.#phase = "done";
    this.#span?.status(error.status);
    this.#span?.end();
    this.#cleanup();
    this.#upstream.destroy();
    const client = this.host.socket;
    writeErrorToSocket(client, error);
    // The rest of an unread body is not waited for.
    if (!this.#request.done) client.once("finish", () => client.destroy());
    this.host.done(false);
  }

  /** After the worker's head: the client must see a broken response, not a short one. */
  #cut(): void {
    this.#phase = "done";
    this.#span?.end("cut mid-message (the worker or the client failed)");
    this.#cleanup();
    this.#upstream.destroy();
    if (this.#draining === undefined) this.host.socket.destroy();
  }

  /** A drained answer took too long or was too big: the upstream connection goes. */
  #abandon(): void {
    this.#phase = "done";
    this.#cleanup();
    this.#upstream.destroy();
  }

  /** Writes to the client (nowhere once it left); false: wait for its 'drain'. */
  #toClient(data: Buffer): boolean {
    return this.#draining !== undefined || this.host.socket.write(data);
  }

  #cleanup(): void {
    this.host.dataDeadline.clear();
    clearTimeout(this.#drainTimer);
    this.#deadline?.stop();
  }

  /** The worker sent no response head within data_timeout. */
  dataTimedOut(): void {
    if (this.#phase !== "head") return;
    dataTimedOut(this.host.ctx, this.#session, this.#dataTimeoutMs, (error) => this.#fail(error));
  }

  /** A session's lease ended (release, max_lifetime, worker lost): ours, if it is `ended`. */
  sessionEnded(ended: AbortSignal): void {
    if (ended !== this.conn.lease.ended) return;
    if (this.#phase === "head") this.#fail(badGateway(endedReason(this.conn.lease.ended)));
    else if (this.#phase === "body") this.#cut();
  }

  #bodyTooSlow(): void {
    const { ctx, socket } = this.host;
    ctx.logger.debug(
      { session: this.#session.id, remote: socket.remoteAddress },
      "data plane: request body too slow, cutting it",
    );
    this.#fail(bodyTooSlow(ctx.bodyRate.timeoutMs, ctx.bodyRate.minRate));
  }
}
