// One upstream TCP connection of the fast path, pinned to one client connection and one target
// (a worker, or the owning node's data plane for a cluster peer's session): no pool, so at
// steady state no connection is ever opened, and a cluster owner sees exactly the client's
// connections open and close.
//
// Invariant: at most one exchange (the sink) owns the socket at a time; bytes that arrive with
// no owner are a worker speaking out of turn, and the socket is destroyed rather than letting
// them become the next request's answer. Once closed it is never used again. Single-threaded.
//
// Reads go into a buffer of the connection's own (net.connect's `onread`), not a new Buffer
// through the stream machinery per read: a chunk the sink gets is valid only during its
// data() call, and a sink that keeps it (or writes it to a socket that did not send it at
// once) calls retained(), which gives the next read a new buffer.

import { connect, type Socket } from "node:net";
import { netConnectOptions, workerEndpoint } from "../../core/index.ts";
import type { DataPlaneCounters } from "../data-plane-counters.ts";

/**
 * Bytes one read takes at most. Each upstream connection keeps its buffer while it lives
 * (parked ones too); 16 KiB moved a 300 MiB download as fast as node's 64 KiB reads.
 */
const READ_BUFFER_BYTES = 16 * 1024;

/** The exchange currently using the upstream connection. */
export interface UpstreamSink {
  /** `chunk` is the connection's read buffer: see retained(). */
  data(chunk: Buffer): void;
  /** The connection closed; `code`: its error code, "ECONNRESET" when it just ended. */
  closed(code: string): void;
  drain(): void;
}

export class PinnedUpstream {
  readonly socket: Socket;
  /** Responses it carried to their end: a reused connection may meet a worker's idle close. */
  served = 0;
  /** May serve another client connection after this one (a local worker, not a peer). */
  shareable = false;
  /** To a cluster peer: the credential this connection was opened with, sent on each request. */
  peerCredential: string | undefined;
  #sink: UpstreamSink | undefined;
  #error: string | undefined;
  #closed = false;
  #buffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
  #retained = false;

  /** Called once when the connection closes (its current holder removes it). */
  onClose: (upstream: PinnedUpstream) => void = () => {};

  constructor(
    readonly address: string,
    counters: DataPlaneCounters,
  ) {
    this.socket = connect({
      ...netConnectOptions(workerEndpoint(address)),
      onread: {
        // Called for the first read and after each one: the buffer the next read fills.
        buffer: () => {
          if (this.#retained) {
            this.#retained = false;
            this.#buffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
          }
          return this.#buffer;
        },
        callback: (n: number, buf: Uint8Array) => {
          if (this.#sink) this.#sink.data((buf as Buffer).subarray(0, n));
          else this.socket.destroy();
          return true;
        },
      },
    });
    this.socket.setNoDelay(true);
    counters.upstreamConnections++;
    this.socket.on("drain", () => this.#sink?.drain());
    this.socket.on("error", (err: NodeJS.ErrnoException) => {
      this.#error ??= err.code ?? err.message;
    });
    this.socket.on("close", () => {
      this.#closed = true;
      this.onClose(this);
      const sink = this.#sink;
      this.#sink = undefined;
      sink?.closed(this.#error ?? "ECONNRESET");
    });
  }

  /** Open, idle and not half-closed by the worker. */
  get usable(): boolean {
    return !this.#closed && this.#sink === undefined && this.socket.readable;
  }

  /** The chunk of the current data() call outlives it: the next read needs another buffer. */
  retained(): void {
    this.#retained = true;
  }

  attach(sink: UpstreamSink): void {
    this.#sink = sink;
  }

  /** The exchange is done with it; `reusable` false destroys it. */
  detach(reusable: boolean): void {
    this.#sink = undefined;
    if (!reusable) this.destroy();
    else if (this.socket.isPaused()) this.socket.resume();
  }

  destroy(): void {
    this.#sink = undefined;
    this.socket.destroy();
  }
}
