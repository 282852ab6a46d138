// Reads of an accepted client connection into a buffer of the fast path's own: what
// net.connect's public `onread` option does for the upstream connections (pinned-upstream.ts),
// for the socket net.Server made, which Node 20 offers no option for. Without it each read
// costs a 64 KiB allocation, a Buffer, Readable's push and 'data' machinery and a tick; with
// it, a call into one function with a reused buffer (the data-plane bench measured 0.87–0.93 ×
// herd's CPU per request). It sets on the socket the three properties `onread` sets (found by
// their descriptions on a socket made with `onread`, so nothing is guessed) and calls its
// handle's useUserBuffer, as net.Socket's constructor does for `onread`. Where this Node has
// none of that, install() returns undefined and the caller reads 'data' events as before.
//
// Invariant: a chunk given to the sink is valid only during that call (the next read reuses
// the buffer); the sink copies what it keeps (owns() tells) or calls retained() when a socket
// write still queues it, which gives the next read a new buffer. After release() (the hand-off
// to node:http) every read is copied and pushed into the socket's Readable, and the socket's
// pause/resume/read are Readable's again, so node:http, and whatever it passes the socket to,
// sees an ordinary socket (while node:http's parser consumes the handle, reads do not come here
// at all). Single-threaded.

import { Socket } from "node:net";
import { Duplex } from "node:stream";

/** Bytes one read takes at most, as an upstream connection's (pinned-upstream.ts). */
const READ_BUFFER_BYTES = 16 * 1024;

type Sink = (chunk: Buffer) => void;

interface OnreadKeys {
  buffer: symbol;
  callback: symbol;
  generator: symbol;
}

/** The properties net.Socket keeps `onread` in, or undefined if this Node has other ones. */
const KEYS: OnreadKeys | undefined = (() => {
  const generator = () => Buffer.alloc(1);
  const callback = () => true;
  const probe = new Socket({ onread: { buffer: generator, callback } } as ConstructorParameters<
    typeof Socket
  >[0]);
  const found: Partial<OnreadKeys> = {};
  for (const key of Object.getOwnPropertySymbols(probe)) {
    const value = (probe as unknown as Record<symbol, unknown>)[key];
    if (key.description === "kBuffer" && value === true) found.buffer = key;
    else if (key.description === "kBufferCb" && value === callback) found.callback = key;
    else if (key.description === "kBufferGen" && value === generator) found.generator = key;
  }
  probe.destroy();
  const { buffer, callback: cb, generator: gen } = found;
  return buffer && cb && gen ? { buffer, callback: cb, generator: gen } : undefined;
})();

interface UserBufferHandle {
  useUserBuffer(buffer: Uint8Array): void;
}

export class ClientReads {
  #buffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
  #retained = false;
  /** undefined: released. */
  #sink: Sink | undefined;

  /** Reads of `socket` (just accepted, no byte read yet) go to `sink`; undefined: not here. */
  static install(socket: Socket, sink: Sink): ClientReads | undefined {
    const handle = (socket as unknown as { _handle?: Partial<UserBufferHandle> | null })._handle;
    if (KEYS === undefined || typeof handle?.useUserBuffer !== "function") return undefined;
    return new ClientReads(socket, handle as UserBufferHandle, KEYS, sink);
  }

  private constructor(
    readonly socket: Socket,
    handle: UserBufferHandle,
    keys: OnreadKeys,
    sink: Sink,
  ) {
    this.#sink = sink;
    const s = socket as unknown as Record<symbol, unknown>;
    s[keys.buffer] = this.#buffer;
    s[keys.callback] = (n: number, buf: Buffer) => {
      const chunk = buf.subarray(0, n);
      const sink = this.#sink;
      // Released: false (Readable's buffer is full) stops reading until Readable wants more.
      if (sink === undefined) return socket.push(Buffer.from(chunk));
      sink(chunk);
      return true;
    };
    // Called after each read: the buffer the next one fills.
    s[keys.generator] = () => {
      if (this.#retained) {
        this.#retained = false;
        this.#buffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
      }
      return this.#buffer;
    };
    handle.useUserBuffer(this.#buffer);
  }

  /** `chunk` is (a part of) the read buffer: it must be copied to outlive the sink's call. */
  owns(chunk: Buffer): boolean {
    return chunk.buffer === this.#buffer.buffer;
  }

  /** The chunk of the current call outlives it (a write queued it): the next read needs another buffer. */
  retained(): void {
    this.#retained = true;
  }

  /**
   * From now on reads are copied into the socket's Readable, for node:http ('data'), and the
   * socket's pause, resume and read are Readable's own again: net.Socket's start and stop its
   * handle's reading for a socket with `onread`, which would restart reading under whoever
   * stops it (the native relay's hand-over stops it, and only expects Readable's _read).
   */
  release(): void {
    this.#sink = undefined;
    const socket = this.socket as unknown as Pick<Duplex, "pause" | "resume" | "read">;
    socket.pause = Duplex.prototype.pause;
    socket.resume = Duplex.prototype.resume;
    socket.read = Duplex.prototype.read;
  }
}
