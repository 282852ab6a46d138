// The client's side of an Upgrade request until its tunnel opens. Node hands the socket over
// unread; left unread, a client that gives up (sends FIN) is never noticed (the server is
// half-open: the socket sits in CLOSE-WAIT), and its acquire stays queued, then takes a worker
// for a session nobody uses. So the socket is read from the start: 'end' destroys it, which
// closes it, which cancels the wait. What it sends meanwhile is kept, up to a bound beyond
// which reading pauses (backpressure, as any proxy would).
//
// Invariant: every byte read from the client is either forwarded as the request body
// (forwardBody) or returned by take(), in order, exactly once; after take() nothing more is
// read here (the caller pipes the socket). Single-threaded.

import type { Duplex, Writable } from "node:stream";

/** Bytes kept while waiting before reading pauses. */
const MAX_BUFFERED = 64 * 1024;

export class UpgradeClient {
  #chunks: Buffer[] = [];
  #buffered = 0;
  #body: { sink: Writable; left: number } | undefined;
  #taken = false;
  readonly #onData = (chunk: Buffer) => this.#receive(chunk);
  readonly #onEnd = () => this.socket.destroy();

  constructor(
    readonly socket: Duplex,
    head: Buffer,
  ) {
    if (head.length > 0) this.#keep(head);
    socket.on("data", this.#onData);
    socket.once("end", this.#onEnd);
  }

  /** Sends the next `length` (> 0) bytes to `sink` as the request body and ends it. */
  forwardBody(length: number, sink: Writable): void {
    this.#body = { sink, left: length };
    const kept = this.#chunks;
    this.#chunks = [];
    this.#buffered = 0;
    for (const chunk of kept) this.#receive(chunk);
    if (!this.#taken) this.socket.resume();
  }

  /** Stops reading; returns the bytes received and not forwarded. */
  take(): Buffer {
    this.#taken = true;
    this.socket.off("data", this.#onData);
    this.socket.off("end", this.#onEnd);
    this.socket.pause();
    const rest = Buffer.concat(this.#chunks);
    this.#chunks = [];
    this.#buffered = 0;
    return rest;
  }

  #receive(chunk: Buffer): void {
    if (this.#taken) return;
    const body = this.#body;
    if (body === undefined || body.left === 0) {
      this.#keep(chunk);
      return;
    }
    const part = chunk.length <= body.left ? chunk : chunk.subarray(0, body.left);
    body.left -= part.length;
    if (!body.sink.write(part) && body.left > 0) {
      this.socket.pause();
      body.sink.once("drain", () => {
        if (!this.#taken) this.socket.resume();
      });
    }
    if (body.left === 0) body.sink.end();
    if (part.length < chunk.length) this.#keep(chunk.subarray(part.length));
  }

  #keep(chunk: Buffer): void {
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    if (this.#buffered >= MAX_BUFFERED) this.socket.pause();
  }
}
