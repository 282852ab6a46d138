// A call answered before its request body was read to the end (a message over readMaxBytes,
// a refused call) must end the exchange, or both sides wait on each other: the client keeps
// sending into a stream nobody reads, or reuses a connection whose parser is still inside the
// old body. HTTP/1.1: the answer says `Connection: close`, and the close lingers. HTTP/2: after the complete answer
// (trailers included), RST_STREAM(NO_ERROR) tells the client to stop sending (RFC 9113
// §8.1). Stateless; called once per request before the handler runs.

import type { IncomingMessage, ServerResponse } from "node:http";
import { constants, type Http2ServerRequest, type Http2ServerResponse } from "node:http2";
import type { Socket } from "node:net";
import { lingeringClose } from "../limits/index.ts";

/**
 * How long a connection answered early keeps reading (and dropping) what the client still sends
 * after herd's FIN. Closing at once, with bytes unread, makes the kernel reset the connection, and
 * a client still sending its request sees EPIPE or ECONNRESET instead of the answer (a refused
 * call, UNAUTHENTICATED, was seen to); so the close lingers, like nginx's lingering_close.
 */
const LINGER_MS = 2_000;

/** Node ends a connection that must not be kept alive with destroySoon: make that linger. */
function lingerOnClose(socket: Socket): void {
  socket.destroySoon = function (this: Socket) {
    lingeringClose(this, LINGER_MS, "now");
  };
}

export function closeIfAnsweredEarly(req: IncomingMessage, res: ServerResponse): void {
  // Node writes the head from writeHead (called for implicit heads too): the last moment at
  // which the connection header can still be chosen.
  const writeHead = res.writeHead;
  res.writeHead = function (this: ServerResponse, ...args: Parameters<typeof writeHead>) {
    if (!req.complete) {
      this.shouldKeepAlive = false;
      // A request the framework already destroyed has no socket left to linger on.
      const socket = this.socket ?? req.socket;
      if (socket) lingerOnClose(socket);
    }
    return writeHead.apply(this, args);
  } as typeof writeHead;
}

export function resetIfAnsweredEarly(req: Http2ServerRequest, res: Http2ServerResponse): void {
  // Node's compatibility layer always responds with waitForTrailers and sends the trailers
  // (possibly none) from its own 'wantTrailers' listener, registered before this one: once
  // ours runs, the answer is complete. (Http2ServerResponse's 'finish' comes only once the
  // whole stream has closed, which is what never happens here.)
  const stream = res.stream;
  stream.once("wantTrailers", () => {
    if (req.complete) return;
    setImmediate(() => {
      if (!stream.closed) stream.close(constants.NGHTTP2_NO_ERROR);
      // Node frees a stream closed with NO_ERROR only once its readable side has been read
      // to the end, which the handler stopped doing: without this the stream, and with it
      // the connection's idle deadline and a graceful shutdown, would wait forever.
      stream.destroy();
    });
  });
}
