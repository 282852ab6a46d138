// The one thing that passes from the fast path (fast/fast-connection.ts) to node:http's
// (node-http/node-http-server.ts): a client connection the fast path will not serve from this
// request on, with the bytes it read and did not use and why it let it go. A plain value,
// given once; the fast path keeps nothing of the connection afterwards.

import type { Socket } from "node:net";

export interface HandOff {
  /** At a request boundary, the fast path's listeners removed. */
  socket: Socket;
  /** Bytes read from the socket and not used: the request node:http starts from. */
  unread: Buffer | undefined;
  why: HandOffReason;
}

export type HandOffReason =
  /**
   * node:http parses and answers the request as any other: a head the fast path does not take
   * (or not from one read), HTTP/1.0, an upgrade, Expect: 100-continue, a route or access check
   * that fails.
   */
  | { kind: "declined" }
  /**
   * Opening the request's session failed on the fast path (an acquire whose wait ran out, a
   * wrong token...): node:http answers that request with `error` instead of trying again.
   */
  | { kind: "open-failed"; error: unknown };
