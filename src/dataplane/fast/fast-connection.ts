// The data plane's hot path: an admitted client connection starts here, not in node:http. It
// reads raw bytes, finds request heads with the strict parser (http1/request-head.ts) and forwards
// each plain request for a live session it may serve (fast-exchange.ts) over upstream
// connections pinned to this client connection (pinned-upstream.ts).
//
// A request for a session that is not live here yet (an acquire, a cluster-wide find) waits
// here for openConnection, as node:http's path would, and is then served here too.
//
// Everything else is handed off, at a request boundary, to the node:http server: a head the
// parser declines or that is not complete in one read (a slow head gets node:http's
// headersTimeout), HTTP/1.0, an upgrade, Expect: 100-continue, a route or access check that
// fails (every error answer: one found while opening is passed along in ctx.failedOpens, so
// node:http answers it without a second try). The hand-off puts the bytes read so far back
// (unshift), drops our listeners and emits 'connection' on the server, which parses from that
// request on; the connection stays there for the rest of its life. So every answer but a
// forwarded one is node:http's, byte for byte.
//
// Invariants: at most one exchange at a time (no pipelining: the next head is parsed only
// after the current response ended; bytes read ahead stay buffered, and reading stops once
// they exceed one head's limit). Leases are the node:http path's (one per client connection
// per session, ClientConnections), so a hand-off keeps them. Upstream connections to a cluster
// peer live and die with the client connection; idle ones to a local worker outlive it in the
// park (upstream-park.ts) for the next client connection. Timers: the first head must start within headersTimeout
// (408, like node:http), an idle keep-alive connection is closed after keepAliveTimeout, and
// the exchange in hand's data_timeout runs on one LazyDeadline per connection (not a timer per
// request).
// Single-threaded.

import type { Socket } from "node:net";
import type { SessionInfo } from "../../core/index.ts";
import { PEER_HEADER } from "../../core/index.ts";
import { lingeringClose } from "../../limits/index.ts";
import { headTimedOut, writeErrorToSocket } from "../http-errors.ts";
import { nameEquals } from "../http1/bytes.ts";
import { type RequestScan, scanRequestHead } from "../http1/request-head.ts";
import type { ProxyContext } from "../proxy-context.ts";
import { POOL_HEADER, type Route, TOKEN_HEADER } from "../route.ts";
import {
  type Connection,
  openConnection,
  openKnownConnection,
  reuseConnection,
} from "../session-access.ts";
import { type ExchangeHost, FastExchange } from "./fast-exchange.ts";
import { LazyDeadline } from "./lazy-deadline.ts";
import { PinnedUpstream } from "./pinned-upstream.ts";

export interface FastOptions {
  /** Largest request (and response) head; longer ones go to node:http (431). */
  maxHeadBytes: number;
  headersTimeoutMs: number;
  keepAliveTimeoutMs: number;
  /** Gives the socket, its unread bytes put back, to the node:http server. */
  handOff: (socket: Socket) => void;
  /** The connection is closed or handed off. */
  gone: (connection: FastConnection) => void;
}

/** Upstream connections one client connection keeps open at most (distinct targets). */
const MAX_UPSTREAMS = 8;
/** node:http's default server.maxHeadersCount. */
const MAX_HEADERS_COUNT = 2000;
/** How long a connection we close keeps reading what its client still sends. */
const CLOSE_LINGER_MS = 2_000;

/** The lower-case routing header buf[ns..ne) names, if it names one. */
function routingName(
  buf: Buffer,
  ns: number,
  ne: number,
  sessionHeader: string,
): string | undefined {
  if (nameEquals(buf, ns, ne, sessionHeader)) return sessionHeader;
  for (const name of ROUTING_HEADERS) if (nameEquals(buf, ns, ne, name)) return name;
  return undefined;
}
/** What routing and web-access.ts read (Host, and a browser's Origin, Referer, Sec-Fetch-Site). */
const ROUTING_HEADERS = [
  "host",
  "cookie",
  "origin",
  "referer",
  "sec-fetch-site",
  TOKEN_HEADER,
  POOL_HEADER,
  PEER_HEADER,
];

export class FastConnection implements ExchangeHost {
  readonly maxHeadBytes: number;
  #pending: Buffer | undefined;
  #exchange: FastExchange | undefined;
  readonly #upstreams = new Map<string, PinnedUpstream>();
  /** The session and lease the last request was served on (see reuseConnection). */
  #last: (Connection & { touchedAt: number }) | undefined;
  readonly dataDeadline = new LazyDeadline(() => this.#exchange?.dataTimedOut());
  /** Abort listeners on the leases this connection holds, one each (not one per request). */
  readonly #watching = new Map<AbortSignal, () => void>();
  #timer: NodeJS.Timeout | undefined;
  /** No request seen yet: idleness means a head that never starts (408). */
  #first = true;
  /** openConnection is under way for the buffered request (an acquire, a find). */
  #opening = false;
  /** It succeeded: the buffered request is not sent to open a connection again. */
  #opened = false;
  #detached = false;
  #clientEnded = false;
  #closing = false;
  #shuttingDown = false;
  #uploadPaused = false;
  #readAheadPaused = false;
  // biome-ignore lint/suspicious/noExplicitAny: one list for on() and off() of differently typed events
  readonly #listeners: [string, (...args: any[]) => void][];

  constructor(
    readonly ctx: ProxyContext,
    readonly socket: Socket,
    readonly opts: FastOptions,
  ) {
    this.maxHeadBytes = opts.maxHeadBytes;
    this.#listeners = [
      ["data", (chunk: Buffer) => this.#data(chunk)],
      ["end", () => this.#ended()],
      ["close", () => this.#closed()],
      ["drain", () => this.#exchange?.clientDrained()],
      ["error", (err: Error) => ctx.logger.debug({ err }, "data plane: client socket error")],
    ];
    for (const [event, fn] of this.#listeners) socket.on(event, fn);
    this.#idle();
  }

  /** The data plane closes: the connection and its exchange go at once (no drain). */
  destroy(): void {
    this.#shuttingDown = true;
    this.socket.destroy();
  }

  // ---- ExchangeHost ----

  upstream(address: string, fresh: boolean, shareable: boolean): PinnedUpstream {
    const pinned = this.#upstreams.get(address);
    if (!fresh && pinned?.usable) return pinned;
    pinned?.destroy();
    if (this.#upstreams.size >= MAX_UPSTREAMS) {
      const [oldest] = this.#upstreams.values();
      if (oldest) {
        this.#upstreams.delete(oldest.address);
        oldest.destroy();
      }
    }
    const parked = fresh || !shareable ? undefined : this.ctx.park.take(address);
    let upstream = parked;
    if (upstream === undefined) {
      // Rare at steady state (none, once every client connection has its own): say why.
      this.ctx.logger.debug(
        {
          worker: address,
          reason: fresh
            ? "retry"
            : pinned
              ? "pinned one closed"
              : shareable
                ? "none parked"
                : "peer",
        },
        "data plane: new upstream connection",
      );
      upstream = new PinnedUpstream(address, this.ctx.counters);
    }
    upstream.shareable = shareable;
    upstream.onClose = (u) => {
      if (this.#upstreams.get(u.address) === u) this.#upstreams.delete(u.address);
    };
    this.#upstreams.delete(address);
    this.#upstreams.set(address, upstream);
    return upstream;
  }

  pauseClient(): void {
    this.#uploadPaused = true;
    this.socket.pause();
  }

  resumeClient(): void {
    if (!this.#uploadPaused) return;
    this.#uploadPaused = false;
    if (!this.#readAheadPaused) this.socket.resume();
  }

  disown(upstream: PinnedUpstream): void {
    if (this.#upstreams.get(upstream.address) === upstream) {
      this.#upstreams.delete(upstream.address);
    }
    upstream.onClose = () => {};
  }

  watchSession(ended: AbortSignal): void {
    if (this.#watching.has(ended)) return;
    const listener = () => this.#exchange?.sessionEnded(ended);
    ended.addEventListener("abort", listener, { once: true });
    this.#watching.set(ended, listener);
  }

  done(keepAlive: boolean): void {
    this.#exchange = undefined;
    if (!keepAlive) {
      this.#close();
      return;
    }
    if (this.#uploadPaused || this.#readAheadPaused) {
      this.#uploadPaused = this.#readAheadPaused = false;
      this.socket.resume();
    }
    this.#next();
  }

  // ---- the client connection ----

  #data(chunk: Buffer): void {
    if (this.#closing) return;
    let rest: Buffer | undefined = chunk;
    if (this.#exchange && !this.#exchange.requestDone) rest = this.#exchange.clientData(chunk);
    if (rest === undefined || this.#closing) return;
    this.#pending = this.#pending ? Buffer.concat([this.#pending, rest]) : rest;
    if (this.#exchange === undefined && !this.#opening) {
      this.#next();
    } else if (this.#pending.length > this.maxHeadBytes && !this.#readAheadPaused) {
      this.#readAheadPaused = true;
      this.socket.pause();
    }
  }

  /** Between exchanges: serve the next buffered request, hand it off, or wait. */
  #next(): void {
    const pending = this.#pending;
    if (pending === undefined) {
      if (this.#clientEnded) this.socket.end();
      else this.#idle();
      return;
    }
    // The idle timer stays armed (a fired one is re-armed by refresh, a cleared one is not):
    // #idleTimeout ignores it while a request is in hand.
    const head = scanRequestHead(pending, 0, this.maxHeadBytes);
    const served = typeof head === "object" ? this.#serve(pending, head) : false;
    if (!served) this.#handOff();
  }

  /** Starts the exchange of `head`, or false: node:http answers it. */
  #serve(pending: Buffer, head: RequestScan): boolean {
    if (head.minor !== 1 || head.upgrade || head.expectContinue) return false;
    // Decoded once: routing reads values from it and the worker's head is built from its slices.
    const text = pending.toString("latin1", 0, head.headBytes);
    const route = this.#route(pending, text, head);
    if (route === undefined) return false;
    const { directory, access } = this.ctx;
    let conn = this.#last && reuseConnection(directory, this.#last, route, access);
    if (conn === undefined) {
      conn = openKnownConnection(directory, route, access, this.#take, this.socket);
      if (conn === undefined || conn.lease.ended.aborted) {
        if (this.#opened) return false;
        this.#open(route);
        return true;
      }
      this.#last = { ...conn, touchedAt: Date.now() };
    }
    this.#opened = false;
    const initial = pending.length > head.headBytes ? pending.subarray(head.headBytes) : undefined;
    this.#pending = undefined;
    if (this.#first) {
      // From now on idleness is keep-alive time, on a timer of its own length.
      this.#first = false;
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    const exchange = new FastExchange(this, pending, text, head, route, conn);
    this.#exchange = exchange;
    const rest = exchange.start(initial);
    if (rest !== undefined && this.#exchange === exchange) this.#pending = rest;
    return true;
  }

  readonly #take = (session: SessionInfo) => this.ctx.connections.http(this.socket, session);

  /**
   * The buffered request names a session this node cannot serve at once: a new one (acquire),
   * one elsewhere in the cluster (find), or an error to answer. openConnection does what
   * node:http's path would, the client's bytes buffering meanwhile (its close cancels a wait).
   * Then the request is served here, or handed to node:http with the error, which it answers
   * without trying again. So a connection that creates its session stays on the fast path.
   */
  #open(route: Route): void {
    this.#opening = true;
    const { directory, access } = this.ctx;
    openConnection(directory, route, access, this.socket, this.#take).then(
      () => {
        this.#opening = false;
        if (this.#detached) return;
        this.#opened = true;
        this.#next();
      },
      (err: unknown) => {
        this.#opening = false;
        if (this.#detached) return;
        this.ctx.failedOpens.set(this.socket, err);
        this.#handOff();
      },
    );
  }

  /** ctx.web.route on the headers it reads; undefined when node:http should decide. */
  #route(buf: Buffer, text: string, head: RequestScan): Route | undefined {
    const { sessionHeader } = this.ctx;
    const headers: Record<string, string> = {};
    const { fields, fieldCount } = head;
    // node:http drops headers past maxHeadersCount: such a request is not forwarded as is.
    if (fieldCount > MAX_HEADERS_COUNT) return undefined;
    for (let m = 0; m < 4 * fieldCount; m += 4) {
      const ns = fields[m]!;
      const ne = fields[m + 1]!;
      const n = ne - ns;
      // Only names of a routing header's length are compared (most fail that test).
      if (
        n !== 4 &&
        n !== 6 &&
        n !== 7 &&
        n !== 11 &&
        n !== 12 &&
        n !== 14 &&
        n !== sessionHeader.length
      ) {
        continue;
      }
      const name = routingName(buf, ns, ne, sessionHeader);
      if (name === undefined) continue;
      // node:http joins repeated headers by rules of its own: leave those requests to it.
      if (headers[name] !== undefined) return undefined;
      headers[name] = text.slice(fields[m + 2]!, fields[m + 3]!);
    }
    // node:http answers 400 to an HTTP/1.1 request without Host (requireHostHeader).
    if (headers.host === undefined) return undefined;
    try {
      return this.ctx.web.route(
        text.slice(head.targetStart, head.targetEnd),
        headers,
        sessionHeader,
      );
    } catch {
      return undefined;
    }
  }

  #handOff(): void {
    this.#detach();
    if (this.#clientEnded) {
      // Its FIN was read already: the rest cannot be put back for another parser.
      this.socket.end();
      return;
    }
    if (this.#pending) this.socket.unshift(this.#pending);
    this.#pending = undefined;
    this.opts.handOff(this.socket);
  }

  #detach(): void {
    this.#detached = true;
    clearTimeout(this.#timer);
    this.dataDeadline.stop();
    for (const [event, fn] of this.#listeners) this.socket.off(event, fn);
    for (const [ended, listener] of this.#watching) ended.removeEventListener("abort", listener);
    this.#watching.clear();
    for (const upstream of this.#upstreams.values()) {
      if (upstream.shareable) this.ctx.park.park(upstream);
      else upstream.destroy();
    }
    this.#upstreams.clear();
    this.opts.gone(this);
  }

  #idle(): void {
    if (this.#timer) {
      this.#timer.refresh();
      return;
    }
    const ms = this.#first ? this.opts.headersTimeoutMs : this.opts.keepAliveTimeoutMs;
    this.#timer = setTimeout(() => this.#idleTimeout(), ms);
  }

  #idleTimeout(): void {
    if (this.#exchange !== undefined || this.#pending !== undefined || this.#closing) return;
    if (!this.#first) {
      this.socket.destroy();
      return;
    }
    writeErrorToSocket(this.socket, headTimedOut());
    this.#close();
  }

  #ended(): void {
    this.#clientEnded = true;
    if (this.#closing) return; // our end() is under way; the socket closes once it is flushed
    // A client that half-closes while its session is being opened is taken as gone, as
    // node:http takes it: the wait (and the worker it would bind) is cancelled.
    if (this.#opening) {
      this.socket.destroy();
      return;
    }
    if (this.#exchange) this.#exchange.clientEnded();
    else if (this.#pending === undefined) this.socket.end();
  }

  /**
   * Ends our side after an answer that closes the connection, reading (and dropping) what the
   * client still sends so that closing does not reset the connection under the answer; a
   * client that never closes its side is cut a while after the answer was flushed.
   */
  #close(): void {
    this.#closing = true;
    this.#pending = undefined;
    clearTimeout(this.#timer);
    if (!this.#clientEnded) lingeringClose(this.socket, CLOSE_LINGER_MS, "flushed");
    else if (!this.socket.writableEnded) this.socket.end();
  }

  #closed(): void {
    this.#closing = true;
    this.#exchange?.clientClosed(!this.#shuttingDown);
    this.#exchange = undefined;
    this.#detach();
  }
}
