// Closing a connection herd has answered while its client may still be sending. Closing at
// once, with bytes unread, makes the kernel reset the connection, and the client sees EPIPE or
// ECONNRESET instead of the answer; so, like nginx's lingering_close, herd ends its side, keeps
// reading (and dropping) what the client still sends, and destroys the socket once the client
// closes or `lingerMs` have passed. Stateless; one timer per closing socket.

import type { Socket } from "node:net";

/**
 * Ends `socket` (unless its answer already ended it) and lingers as above. The linger counts
 * from `from`: "now" for a short error answer (a client that does not read it is cut all the
 * same), "flushed" for a whole response that may take its client a while to read.
 */
export function lingeringClose(socket: Socket, lingerMs: number, from: "now" | "flushed"): void {
  if (!socket.writableEnded) socket.end();
  socket.resume();
  const linger = () => {
    const timer = setTimeout(() => socket.destroy(), lingerMs);
    timer.unref();
    socket.once("close", () => clearTimeout(timer));
  };
  if (from === "now" || socket.writableFinished) linger();
  else socket.once("finish", linger);
}
