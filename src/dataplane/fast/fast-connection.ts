// The data plane's hot path: an admitted client connection starts here, not in node:http. It
// reads raw bytes, finds request heads with the strict parser (http1/request-head.ts) and forwards
// each plain request for a live session it may serve (fast-exchange.ts) over upstream
// connections pinned to this client connection (pinned-upstream.ts).
//
// A request for a session that is not live here yet (an acquire, a cluster-wide find) waits
// here for its open (SessionAccess.open), as node:http's path would, and is then served here too.
//
// Everything else is handed off, at a request boundary, to node:http (a HandOff value,
// hand-off.ts, given to node-http/node-http-server.ts): a head the parser declines or that is
// not complete in one read (a slow head gets node:http's headersTimeout), HTTP/1.0, an upgrade,
// Expect: 100-continue, a route or access check that fails (every error answer: one met while
// opening goes along in the hand-off, so node:http answers it without a second try). node:http
// parses from that request on, the bytes read so far put back; the connection stays there for
// the rest of its life. So every answer but a forwarded one is node:http's, byte for byte.
//
// In a cluster (relay-hop.ts): a request for another node's session, on a connection whose last
// request went to another node too, makes the connection a relay hop to the owner (handed to
// FastOptions.relay, from that request's head on: gone); and a connection another node relayed
// here opens with a relay preamble, read before the first head: a genuine one names the client
// this connection is then served as, anything else is refused (401, closing). On a relayed
// connection the first request must be for a session of this node (else 502, as a classic
// forward's), and none is relayed again.
//
// States (State below, each with the data it needs):
//   idle      waiting for a head; `first`: none came yet (the idle timer is headersTimeout and
//             answers 408; after that it is keepAliveTimeout and closes)
//   opening   the buffered request's session is being opened; the client's bytes buffer
//             (`first` as in idle; `paused` as in exchange, for read-ahead only)
//   exchange  a request in hand; `paused`: why reading the client is paused
//   closing   our side ends after an answer that closes; what the client still sends is dropped
//   gone      the socket closed or went to node:http; our listeners are removed
// Events and the moves they make:
//   data, in idle: a head served here → exchange; one whose session must be opened first →
//     opening; anything else → gone (handed off). In opening or exchange it is buffered,
//     reading paused past one head's worth.
//   opened → exchange, or gone (handed off: still not servable); open failed → gone (handed
//     off with the error)
//   the exchange's done(): keep-alive → idle, and on at once with bytes read ahead; else →
//     closing
//   idle timer, in idle: first → 408 and closing; later → the socket destroyed
//   client FIN (the socket's readableEnded keeps it): in idle our end follows; in opening the
//     socket is destroyed (the wait cancelled, as node:http does); in exchange the exchange
//     decides; a hand-off after it ends the socket instead (the bytes cannot be put back)
//   socket close, in any state → gone; destroy() (the data plane closing) destroys the socket
//
// Invariants: at most one exchange at a time (no pipelining: the next head is parsed only
// after the current response ended; bytes read ahead stay buffered, and reading stops once
// they exceed one head's limit). Leases are the node:http path's (one per client connection
// per session, ClientConnections), so a hand-off keeps them. Upstream connections to a cluster
// peer live and die with the client connection; idle ones to a local worker outlive it in the
// park (upstream-park.ts) for the next client connection. Timers: the first head must start
// within headersTimeout (408, like node:http), an idle keep-alive connection is closed after
// keepAliveTimeout (both on one LazyDeadline per connection), and the exchange in hand's
// data_timeout runs on another (neither is a timer per request). Single-threaded.

import type { Socket } from "node:net";
import type { SessionInfo } from "../../core/index.ts";
import { lingeringClose } from "../../limits/index.ts";
import type { HandOff, HandOffReason } from "../hand-off.ts";
import { fromHerdError, headTimedOut, writeErrorToSocket } from "../http-errors.ts";
import { type RequestScan, scanRequestHead } from "../http1/request-head.ts";
import { readPreamble, relayTarget } from "../relay-hop.ts";
import type { Route } from "../route.ts";
import { type Connection, endedBeforeForward, type LastConnection } from "../session-access.ts";
import { ClientReads } from "./client-reads.ts";
import type { FastContext } from "./fast-context.ts";
import { type ExchangeHost, FastExchange } from "./fast-exchange.ts";
import { routeHead } from "./fast-route.ts";
import { LazyDeadline } from "./lazy-deadline.ts";
import { PinnedUpstream } from "./pinned-upstream.ts";

export interface FastOptions {
  /** Largest request (and response) head; longer ones go to node:http (431). */
  maxHeadBytes: number;
  headersTimeoutMs: number;
  keepAliveTimeoutMs: number;
  /** Gives the connection to node:http's server, from the request its unread bytes start. */
  handOff: (handOff: HandOff) => void;
  /** The connection is closed or handed off. */
  gone: (connection: FastConnection) => void;
  /**
   * Set when a client connection whose request is for another node's session becomes a relay
   * hop to that node (relay-hop.ts): takes the socket, from that request's head on.
   */
  relay?: (
    client: Socket,
    address: string,
    unread: Buffer,
    session: SessionInfo,
    target: { host: string; port: number },
  ) => void;
}

/** Upstream connections one client connection keeps open at most (distinct targets). */
const MAX_UPSTREAMS = 8;
/** How long a connection we close keeps reading what its client still sends. */
const CLOSE_LINGER_MS = 2_000;

// Why reading the client is paused: bits of a state's `paused`; it reads again once none is left.
/** The upstream's write buffer is full, until its 'drain'. */
const UPLOAD = 1;
/** More than one head's worth of what follows the request in hand is buffered, until it ends. */
const READ_AHEAD = 2;

interface Idle {
  readonly kind: "idle";
  readonly first: boolean;
}
interface Opening {
  readonly kind: "opening";
  readonly first: boolean;
  paused: number;
}
interface InExchange {
  readonly kind: "exchange";
  readonly exchange: FastExchange;
  paused: number;
}
type State = Idle | Opening | InExchange | { readonly kind: "closing" | "gone" };

const FIRST: Idle = { kind: "idle", first: true };
const IDLE: Idle = { kind: "idle", first: false };
const CLOSING: State = { kind: "closing" };
const GONE: State = { kind: "gone" };
const DECLINED: HandOffReason = { kind: "declined" };

/**
 * The connection the last request was served on, as SessionAccess.known reuses it: a class,
 * so that every client connection's has one shape (a `{ ...conn }` spread gave each its own
 * map, and known()'s loads of it went megamorphic).
 */
class Served implements LastConnection {
  constructor(
    readonly session: SessionInfo,
    readonly lease: Connection["lease"],
    public touchedAt: number,
  ) {}
}

export class FastConnection implements ExchangeHost {
  readonly maxHeadBytes: number;
  #state: State = FIRST;
  /** Bytes read and not yet given to an exchange: the next request(s). */
  #pending: Buffer | undefined;
  readonly #upstreams = new Map<string, PinnedUpstream>();
  /** The session and lease the last request was served on (see SessionAccess.known). */
  #last: LastConnection | undefined;
  /** Set once a relay preamble verified: the node that relayed this connection here. */
  #relayedBy: string | undefined;
  readonly dataDeadline = new LazyDeadline(() => this.#inHand()?.dataTimedOut());
  /** Abort listeners on the leases this connection holds, one each (not one per request). */
  readonly #watching = new Map<AbortSignal, () => void>();
  /** The idle timeout (see #idle): set as the connection goes idle, cleared as a request starts. */
  readonly #idleDeadline = new LazyDeadline(() => this.#idleTimeout());
  // biome-ignore lint/suspicious/noExplicitAny: one list for on() and off() of differently typed events
  readonly #listeners: [string, (...args: any[]) => void][];
  /** Reads into a buffer of our own (client-reads.ts); undefined: 'data' events bring them. */
  readonly #reads: ClientReads | undefined;

  constructor(
    readonly ctx: FastContext,
    readonly socket: Socket,
    readonly opts: FastOptions,
  ) {
    this.maxHeadBytes = opts.maxHeadBytes;
    this.#listeners = [
      ["data", (chunk: Buffer) => this.#data(chunk)],
      ["end", () => this.#ended()],
      ["close", () => this.#closed()],
      ["drain", () => this.#inHand()?.clientDrained()],
      ["error", (err: Error) => ctx.logger.debug({ err }, "data plane: client socket error")],
    ];
    for (const [event, fn] of this.#listeners) socket.on(event, fn);
    this.#reads = ClientReads.install(socket, (chunk) => this.#read(chunk));
    this.#idle(true);
  }

  /**
   * The data plane closes: the connection and its exchange go at once. The park is closed by
   * then, so the exchange in hand is not drained for it (see #closed).
   */
  destroy(): void {
    this.socket.destroy();
  }

  #inHand(): FastExchange | undefined {
    const state = this.#state;
    return state.kind === "exchange" ? state.exchange : undefined;
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
    const state = this.#state;
    if (state.kind === "exchange") state.paused |= UPLOAD;
    this.socket.pause();
  }

  resumeClient(): void {
    const state = this.#state;
    if (state.kind !== "exchange" || (state.paused & UPLOAD) === 0) return;
    state.paused &= ~UPLOAD;
    if (state.paused === 0) this.socket.resume();
  }

  disown(upstream: PinnedUpstream): void {
    if (this.#upstreams.get(upstream.address) === upstream) {
      this.#upstreams.delete(upstream.address);
    }
    upstream.onClose = () => {};
  }

  watchSession(ended: AbortSignal): void {
    if (this.#watching.has(ended)) return;
    const listener = () => this.#inHand()?.sessionEnded(ended);
    ended.addEventListener("abort", listener, { once: true });
    this.#watching.set(ended, listener);
  }

  done(keepAlive: boolean): void {
    if (!keepAlive) {
      this.#close();
      return;
    }
    const state = this.#state;
    if (state.kind === "exchange" && state.paused !== 0) this.socket.resume();
    this.#state = IDLE;
    this.#next(IDLE);
  }

  retainedRead(): void {
    this.#reads?.retained();
  }

  // ---- the client connection ----

  /** A read into our own buffer: what is kept past this call is copied out of it. */
  #read(chunk: Buffer): void {
    this.#data(chunk);
    const pending = this.#pending;
    if (pending !== undefined && this.#reads!.owns(pending)) this.#pending = Buffer.from(pending);
  }

  #data(chunk: Buffer): void {
    const state = this.#state;
    if (state.kind === "closing") return;
    let rest: Buffer | undefined = chunk;
    if (state.kind === "exchange" && !state.exchange.requestDone) {
      rest = state.exchange.clientData(chunk);
    }
    const now = this.#state;
    if (rest === undefined || now.kind === "closing") return;
    this.#pending = this.#pending ? Buffer.concat([this.#pending, rest]) : rest;
    if (now.kind === "idle") {
      this.#next(now);
    } else if (
      (now.kind === "opening" || now.kind === "exchange") &&
      this.#pending.length > this.maxHeadBytes &&
      (now.paused & READ_AHEAD) === 0
    ) {
      now.paused |= READ_AHEAD;
      this.socket.pause();
    }
  }

  /**
   * Between exchanges (`from`, the current state): serve the next buffered request, hand it
   * off, or wait. From opening, the request's session has just been opened for it: if it is
   * still not servable here, node:http answers it (it is not opened twice).
   */
  #next(from: Idle | Opening): void {
    if (from.first && this.#pending !== undefined && !this.#preamble()) return;
    const pending = this.#pending;
    if (pending === undefined) {
      if (this.socket.readableEnded) this.socket.end();
      else this.#idle(from.first);
      return;
    }
    const head = scanRequestHead(pending, 0, this.maxHeadBytes);
    const served = typeof head === "object" ? this.#serve(from, pending, head) : false;
    if (!served) this.#handOff(DECLINED);
  }

  /**
   * Before the first head, in a cluster: a connection another node relayed here opens with a
   * relay preamble (relay-hop.ts). A genuine one is consumed, and the connection is served from
   * then on as one of the client it names; any other (forged, stale, for another node, reused,
   * malformed, too long) is refused and the connection closed, nothing else served. False:
   * wait for more bytes, or refused.
   */
  #preamble(): boolean {
    const { cluster } = this.ctx.access.opts;
    if (cluster?.verifyRelay === undefined || this.#relayedBy !== undefined) return true;
    const preamble = readPreamble(this.#pending!);
    switch (preamble.kind) {
      case "none":
        return true;
      case "incomplete":
        return false;
      case "malformed":
        this.#refuseRelay(preamble.why);
        return false;
    }
    const vouch = cluster.verifyRelay(preamble.credential);
    if ("error" in vouch) {
      this.#refuseRelay(vouch.error);
      return false;
    }
    this.#relayedBy = vouch.node;
    // Every reader of the client's address (X-Forwarded-For, logs, node:http's path) sees the
    // relayed client's; the connection gate counted this connection by the sending node's.
    Object.defineProperty(this.socket, "remoteAddress", { value: vouch.client });
    this.#pending = preamble.rest;
    return true;
  }

  #refuseRelay(why: string): void {
    const remote = this.socket.remoteAddress;
    this.ctx.logger.warn({ remote, why }, "data plane: relay preamble refused");
    writeErrorToSocket(
      this.socket,
      fromHerdError("unauthenticated", `relay preamble from ${remote} refused: ${why}`),
    );
    this.#close();
  }

  /**
   * A request for a session another node owns, on a client connection no node relayed here,
   * whose last request went to another node too (forwarded one hop, so that the first answer
   * keeps the classic forward's errors: an owner that has ended the session or dies before
   * answering gets its client a 502 with the reason; a relay could only cut the connection):
   * the connection becomes a relay hop to the owner from this request on (relay-hop.ts).
   */
  #relayHop(route: Route, pending: Buffer): boolean {
    const relay = this.opts.relay;
    if (relay === undefined || this.#relayedBy !== undefined || route.peer !== undefined) {
      return false;
    }
    if (this.#last?.session.peer === undefined) return false;
    const session = this.ctx.directory.lookup(route.sessionId);
    if (session === undefined) return false;
    const target = relayTarget(session);
    const address = this.socket.remoteAddress;
    if (target === undefined || address === undefined || this.socket.readableEnded) return false;
    // `pending` is this.#pending: what #leave returns, copied if it is our read buffer.
    relay(this.socket, address, this.#leave() ?? pending, session, target);
    return true;
  }

  /**
   * The request a node relayed this connection for: it believed this node runs its session.
   * One that does not run here (any more) is answered as a classic forward's would be (502,
   * ended before the request reached it; see SessionAccess), never taken as a new session or
   * sent on. False: so answered (node:http answers the hand-off).
   */
  #runsHere(route: Route): boolean {
    const session = this.ctx.directory.lookup(route.sessionId);
    if (session !== undefined && session.peer === undefined) return true;
    this.#handOff({ kind: "open-failed", error: endedBeforeForward(route.sessionId) });
    return false;
  }

  /** Starts the exchange of `head` (or opening its session), or false: node:http answers it. */
  #serve(from: Idle | Opening, pending: Buffer, head: RequestScan): boolean {
    if (head.minor !== 1) return false;
    // Decoded once: routing reads values from it and the worker's head is built from its slices.
    const text = pending.toString("latin1", 0, head.headBytes);
    const route = routeHead(this.ctx, pending, text, head);
    if (route === undefined) return false;
    if (this.#relayHop(route, pending)) return true;
    if (from.first && this.#relayedBy !== undefined && !this.#runsHere(route)) return true;
    if (head.upgrade || head.expectContinue) return false;
    const conn = this.ctx.access.known(route, this.#take, this.socket, this.#last);
    if (conn === undefined || conn.lease.ended.aborted) {
      if (from.kind === "opening") return false;
      this.#open(from, route);
      return true;
    }
    if (conn !== this.#last) this.#last = new Served(conn.session, conn.lease, Date.now());
    const initial = pending.length > head.headBytes ? pending.subarray(head.headBytes) : undefined;
    this.#pending = undefined;
    this.#idleDeadline.clear();
    const exchange = new FastExchange(this, pending, text, head, route, conn);
    const state: InExchange = {
      kind: "exchange",
      exchange,
      paused: from.kind === "opening" ? from.paused : 0,
    };
    this.#state = state;
    const rest = exchange.start(initial);
    if (rest !== undefined && this.#state === state) this.#pending = rest;
    return true;
  }

  readonly #take = (session: SessionInfo) => this.ctx.connections.http(this.socket, session);

  /**
   * The buffered request names a session this node cannot serve at once: a new one (acquire),
   * one elsewhere in the cluster (find), or an error to answer. access.open does what
   * node:http's path would, the client's bytes buffering meanwhile (its close cancels a wait).
   * Then the request is served here, or handed to node:http with the error, which it answers
   * without trying again. So a connection that creates its session stays on the fast path.
   */
  #open(from: Idle, route: Route): void {
    const opening: Opening = { kind: "opening", first: from.first, paused: 0 };
    this.#state = opening;
    this.ctx.access.open(route, this.socket, this.#take).then(
      () => {
        if (this.#state === opening) this.#next(opening);
      },
      (error: unknown) => {
        if (this.#state === opening) this.#handOff({ kind: "open-failed", error });
      },
    );
  }

  #handOff(why: HandOffReason): void {
    const unread = this.#leave();
    if (this.socket.readableEnded) {
      // Its FIN was read already: the rest cannot be put back for another parser.
      this.socket.end();
      return;
    }
    this.opts.handOff({ socket: this.socket, unread, why });
  }

  /**
   * The socket leaves the fast path (to node:http, or a relay hop): our listeners go, reads go
   * to the socket's Readable from now on, and the bytes read and not consumed are returned,
   * copied out of our read buffer (the next read would overwrite them).
   */
  #leave(): Buffer | undefined {
    this.#detach();
    const pending = this.#pending;
    this.#pending = undefined;
    const reads = this.#reads;
    const unread = pending && reads?.owns(pending) ? Buffer.from(pending) : pending;
    reads?.release();
    return unread;
  }

  #detach(): void {
    this.#state = GONE;
    this.#idleDeadline.stop();
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

  /**
   * Starts the idle timeout: `first`, for the first head (408), else keep-alive time. A lazy
   * deadline, not a timer refreshed per request: its one timer is re-armed only when it fires
   * early (see lazy-deadline.ts).
   */
  #idle(first: boolean): void {
    this.#idleDeadline.set(first ? this.opts.headersTimeoutMs : this.opts.keepAliveTimeoutMs);
  }

  #idleTimeout(): void {
    const state = this.#state;
    if (state.kind !== "idle") return;
    if (!state.first) {
      this.socket.destroy();
      return;
    }
    writeErrorToSocket(this.socket, headTimedOut());
    this.#close();
  }

  #ended(): void {
    const state = this.#state;
    switch (state.kind) {
      case "closing": // our end() is under way; the socket closes once it is flushed
        return;
      case "opening":
        // A client that half-closes while its session is being opened is taken as gone, as
        // node:http takes it: the wait (and the worker it would bind) is cancelled.
        this.socket.destroy();
        return;
      case "exchange":
        state.exchange.clientEnded();
        return;
      case "idle":
        this.socket.end();
    }
  }

  /**
   * Ends our side after an answer that closes the connection, reading (and dropping) what the
   * client still sends so that closing does not reset the connection under the answer; a
   * client that never closes its side is cut a while after the answer was flushed.
   */
  #close(): void {
    this.#state = CLOSING;
    this.#pending = undefined;
    this.#idleDeadline.stop();
    if (!this.socket.readableEnded) lingeringClose(this.socket, CLOSE_LINGER_MS, "flushed");
    else if (!this.socket.writableEnded) this.socket.end();
  }

  /**
   * An exchange in hand may drain its answer for the park, unless the park is closed: the data
   * plane is closing, which destroys every connection (destroy()).
   */
  #closed(): void {
    const state = this.#state;
    this.#state = CLOSING;
    if (state.kind === "exchange") state.exchange.clientClosed(!this.ctx.park.closed);
    this.#detach();
  }
}
