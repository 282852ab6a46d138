// One TCP (or Unix) listener for HTTP/1.1 and HTTP/2 cleartext: plain h2c servers do not fall
// back to HTTP/1.1, so each new connection's first bytes are read and compared with the
// HTTP/2 client preface. A match goes to the http2 server (gRPC, Connect over h2), anything
// else to the http1 server (Connect, gRPC-Web over HTTP/1.1), both running the same handler.
//
// Invariant: a socket is handed to exactly one server, with every byte read so far pushed
// back first; a socket that never says enough to decide is closed after `sniffTimeoutMs`; a
// socket `admit` refuses (connection cap) is destroyed before anything is read.

import type { Server as Http1Server } from "node:http";
import type { Http2Server } from "node:http2";
import { createServer, type Server, type Socket } from "node:net";

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

export interface SniffingListener {
  server: Server;
  /** Every open raw connection, whichever server it went to (for forced shutdown). */
  sockets: ReadonlySet<Socket>;
  /**
   * Stop accepting. A connection accepted already but not handed to a server yet still is, once
   * its first bytes arrive (or its sniff timeout closes it): a restart's old process stops
   * accepting while clients' connections are in flight on the listener it shares with the new
   * one (src/cli/restart.ts), and each one it accepted must be served.
   */
  stop(): void;
}

export interface SniffOptions {
  /** Time a new connection gets to show which protocol it speaks (default 10 s). */
  sniffTimeoutMs?: number;
  /** Whether to take this connection (default: every one). */
  admit?: (socket: Socket) => boolean;
}

export function sniffingListener(
  h1: Http1Server,
  h2: Http2Server,
  opts: SniffOptions = {},
): SniffingListener {
  const sniffTimeoutMs = opts.sniffTimeoutMs ?? 10_000;
  const sockets = new Set<Socket>();
  let stopped = false;
  const server = createServer((socket) => {
    if (stopped || (opts.admit !== undefined && !opts.admit(socket))) {
      socket.destroy();
      return;
    }
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    if (socket.remoteAddress !== undefined) socket.setNoDelay(true);
    let seen: Buffer = Buffer.alloc(0);
    const timer = setTimeout(() => socket.destroy(), sniffTimeoutMs);
    const onError = () => socket.destroy();
    const onData = (chunk: Buffer) => {
      seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
      const n = Math.min(seen.length, PREFACE.length);
      const h2Prefix = seen.subarray(0, n).equals(PREFACE.subarray(0, n));
      if (h2Prefix && seen.length < PREFACE.length) return; // could still be HTTP/2
      clearTimeout(timer);
      socket.off("data", onData);
      socket.off("error", onError);
      socket.pause();
      socket.unshift(seen);
      (h2Prefix ? h2 : h1).emit("connection", socket);
      process.nextTick(() => socket.resume());
    };
    socket.on("data", onData);
    socket.on("error", onError);
    socket.once("close", () => {
      clearTimeout(timer);
    });
  });
  const stop = () => {
    stopped = true;
    server.close();
  };
  return { server, sockets, stop };
}
