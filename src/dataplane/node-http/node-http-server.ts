// node:http's path of the data plane: the HTTP server that takes over every client connection
// the fast path hands it (hand-off.ts) and serves it for the rest of its life, through
// proxy-request.ts and proxy-upgrade.ts. It never listens itself (data-plane.ts accepts).
//
// Invariant: a connection handed over because opening its session failed gets that error as
// the answer to its first request, once, and nothing is tried again for that request; node:http
// parses every other request itself, so every answer herd writes is node:http's. After close(),
// every connection it holds and every WebSocket tunnel is destroyed. Single-threaded.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { HandOff } from "../hand-off.ts";
import {
  fromError,
  headTimedOut,
  protocolError,
  sendError,
  writeErrorToSocket,
} from "../http-errors.ts";
import type { NodeHttpContext } from "./node-http-context.ts";
import { handleRequest } from "./proxy-request.ts";
import { handleUpgrade } from "./proxy-upgrade.ts";

export interface NodeHttpOptions {
  maxHeaderSize: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
}

export class NodeHttpServer {
  readonly #server: Server;
  readonly #tunnels = new Set<Duplex>();
  /**
   * Connections handed over with the error the fast path met opening their session: answered
   * to their first request. Keyed by socket because that is all node:http's request event
   * tells of a connection; only adopt() writes it.
   */
  readonly #failedOpens = new WeakMap<Socket, unknown>();

  constructor(ctx: NodeHttpContext, opts: NodeHttpOptions) {
    const headersTimeout = opts.headersTimeoutMs;
    this.#server = createServer(
      {
        maxHeaderSize: opts.maxHeaderSize,
        headersTimeout,
        requestTimeout: opts.requestTimeoutMs,
        // Node checks the two deadlines above on this period; the default (30 s) would let a
        // slowloris client hold a socket far past headersTimeout.
        connectionsCheckingInterval: Math.max(100, Math.min(1000, headersTimeout / 4)),
        keepAliveTimeout: opts.keepAliveTimeoutMs,
        noDelay: true,
      },
      (req: IncomingMessage, res: ServerResponse) => this.#request(ctx, req, res),
    );
    this.#server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      handleUpgrade(ctx, this.#tunnels, req, socket, head),
    );
    this.#server.on("clientError", (err: NodeJS.ErrnoException, socket: Socket) => {
      if (err.code === "ECONNRESET" || !socket.writable) {
        socket.destroy();
        return;
      }
      const error =
        err.code === "HPE_HEADER_OVERFLOW"
          ? protocolError(431, `request head larger than ${opts.maxHeaderSize} bytes`)
          : err.code === "ERR_HTTP_REQUEST_TIMEOUT"
            ? headTimedOut()
            : protocolError(400, `malformed request: ${err.code ?? err.message}`);
      ctx.logger.debug({ err }, "data plane: client error");
      writeErrorToSocket(socket, error);
    });
  }

  /** The listener is bound: Node tracks connections (deadlines, closeAll) only from then on. */
  listening(): void {
    this.#server.emit("listening");
  }

  /** Serves `handOff.socket` from the request its unread bytes start with. */
  adopt(handOff: HandOff): void {
    const { socket, unread, why } = handOff;
    if (unread) socket.unshift(unread);
    if (why.kind === "open-failed") this.#failedOpens.set(socket, why.error);
    this.#server.emit("connection", socket);
    // Flowing again, so the bytes put back reach node:http's parser before any new read.
    socket.resume();
  }

  #request(ctx: NodeHttpContext, req: IncomingMessage, res: ServerResponse): void {
    const failed = this.#failedOpens.get(req.socket);
    if (failed !== undefined) {
      this.#failedOpens.delete(req.socket);
      sendError(res, fromError(failed));
      return;
    }
    handleRequest(ctx, req, res);
  }

  close(): void {
    this.#server.close();
    this.#server.closeAllConnections();
    for (const socket of this.#tunnels) socket.destroy();
  }
}
