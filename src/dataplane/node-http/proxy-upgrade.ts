// Forwards a WebSocket (any HTTP Upgrade) handshake to the session's worker, then pipes the
// two raw sockets into each other: after the 101, herd no longer parses frames.
//
// Invariants: the tunnel holds its data lease until either socket closes, and closing one
// side destroys the other; a session that ends (release, max_lifetime, worker lost) destroys
// both sockets. The handshake (not the open tunnel) is bounded by the pool's data_timeout,
// like a plain request. Every socket has an 'error' listener: a peer resetting must never
// crash the daemon.

import type { IncomingMessage } from "node:http";
import { type ClientRequestArgs, request } from "node:http";
import { connect, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { SessionInfo } from "../../core/index.ts";
import {
  netConnectOptions,
  relayDialSocket,
  type WorkerEndpoint,
  workerEndpoint,
} from "../../core/index.ts";
import {
  headBlock,
  requestHeadersForWorker,
  responseHeadersForClient,
} from "../forward-headers.ts";
import { toWorker } from "../header-rules.ts";
import {
  badGateway,
  fromError,
  fromHerdError,
  protocolError,
  writeErrorToSocket,
} from "../http-errors.ts";
import { handOver } from "../native-relay.ts";
import { upstreamTarget } from "../peer-forward.ts";
import { endedReason, type ProxyContext } from "../proxy-context.ts";
import type { Route } from "../route.ts";
import type { Connection } from "../session-access.ts";
import { UpgradeClient } from "./upgrade-client.ts";

export function handleUpgrade(
  ctx: ProxyContext,
  tunnels: Set<Duplex>,
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
): void {
  socket.on("error", (err) => ctx.logger.debug({ err }, "data plane: client socket error"));
  let route: Route;
  try {
    route = ctx.web.route(req.url ?? "/", req.headers, ctx.sessionHeader);
  } catch (err) {
    writeErrorToSocket(socket, fromError(err));
    return;
  }
  if (req.headers["transfer-encoding"] !== undefined) {
    // Its end could only be found by parsing the chunks; no WebSocket client sends a body.
    writeErrorToSocket(
      socket,
      protocolError(400, "an Upgrade request with a chunked body is not supported"),
    );
    return;
  }
  tunnels.add(socket);
  socket.once("close", () => tunnels.delete(socket));
  // node:http hands an upgrade its client's net.Socket (typed Duplex): its byte counters count.
  const take = (session: SessionInfo) => ctx.connections.websocket(session, socket as Socket);
  const client = new UpgradeClient(socket, head);
  ctx.access.open(route, socket, take).then(
    (conn) => {
      if (socket.destroyed) conn.lease.close();
      else tunnel(ctx, req, client, route, conn);
    },
    (err) => writeErrorToSocket(socket, fromError(err)),
  );
}

/**
 * A contained worker's tunnel skips its relay when herd's native relay runs: the connection is
 * made inside the worker's namespace (NativeRelay.dial) and, once upgraded, handed to herd's
 * relay like any other, so the tunnel's bytes pass one relay, not two. Through the relay socket
 * when the dial fails (socat's relay has no dial socket).
 */
function upstreamConnection(
  ctx: ProxyContext,
  endpoint: WorkerEndpoint,
): ClientRequestArgs["createConnection"] {
  const relay = ctx.nativeRelay;
  const dialSocket = relay?.usable ? relayDialSocket(endpoint) : undefined;
  if (relay === undefined || dialSocket === undefined) return undefined;
  return ((_options: unknown, done: (err: Error | null, socket: Socket) => void) => {
    relay.dial(dialSocket).then(
      (socket) => {
        ctx.counters.dialed++;
        done(null, socket);
      },
      (err: Error) => {
        ctx.logger.debug({ err }, "data plane: no dial into the worker's namespace");
        done(null, connect(netConnectOptions(endpoint)));
      },
    );
    return undefined;
  }) as never;
}

function tunnel(
  ctx: ProxyContext,
  req: IncomingMessage,
  client: UpgradeClient,
  route: Route,
  conn: Connection,
): void {
  const { socket } = client;
  const { session, lease } = conn;
  let upstreamSocket: Socket | undefined;
  let handshaking = true;
  const target = upstreamTarget(
    session,
    route,
    requestHeadersForWorker(req.rawHeaders, toWorker(route, req.socket.remoteAddress, true)),
  );
  const endpoint = workerEndpoint(session.workerAddress);
  const dial = upstreamConnection(ctx, endpoint);
  const upstream = request({
    ...endpoint,
    method: req.method,
    path: target.path,
    headers: target.headers,
    // A connection of its own: no agent (`agent: false` would make one, which ignores
    // createConnection).
    ...(dial ? { createConnection: dial } : { agent: false }),
    setHost: false,
  });
  ctx.counters.forwarded++;
  ctx.counters.upstreamConnections++;

  const fail = (message: string, status: "502" | "504" = "502") => {
    if (!handshaking) return;
    handshaking = false;
    clearTimeout(timer);
    upstream.destroy();
    writeErrorToSocket(
      socket,
      status === "504" ? fromHerdError("deadline_exceeded", message) : badGateway(message),
    );
  };
  const onEnded = () => {
    if (handshaking) fail(endedReason(lease.ended));
    else {
      upstreamSocket?.destroy();
      socket.destroy();
    }
  };
  const { dataTimeoutMs } = ctx.directory.poolOptions(session.pool);
  const timer =
    dataTimeoutMs > 0
      ? setTimeout(
          () =>
            fail(
              `data_timeout: worker ${session.workerId} (pid ${session.workerPid}) did not answer the upgrade within ${dataTimeoutMs} ms`,
              "504",
            ),
          dataTimeoutMs,
        )
      : undefined;

  socket.once("close", () => {
    clearTimeout(timer);
    lease.ended.removeEventListener("abort", onEnded);
    if (handshaking) {
      handshaking = false;
      upstream.destroy();
    }
    upstreamSocket?.destroy();
    lease.close();
  });
  if (lease.ended.aborted) {
    onEnded();
    return;
  }
  lease.ended.addEventListener("abort", onEnded, { once: true });

  upstream.on("upgrade", (response, upSocket, upHead) => {
    if (!handshaking) {
      upSocket.destroy();
      return;
    }
    handshaking = false;
    clearTimeout(timer);
    upstreamSocket = upSocket;
    upSocket.on("error", (err) => ctx.logger.debug({ err }, "data plane: worker socket error"));
    upSocket.once("close", () => socket.destroy());
    upSocket.setNoDelay(true);
    const head = client.take();
    (socket as Socket).setNoDelay?.(true);
    (socket as Socket).setTimeout?.(0);
    const switching = headBlock(
      `HTTP/1.1 101 ${response.statusMessage ?? "Switching Protocols"}`,
      responseHeadersForClient(response.rawHeaders, true),
    );
    const relay = ctx.nativeRelay;
    if (
      relay?.usable &&
      handOver(
        relay,
        socket as Socket,
        upSocket,
        [Buffer.from(switching), upHead],
        [head],
        lease.traffic,
      )
    ) {
      ctx.counters.nativeTunnels++;
      return;
    }
    socket.write(switching);
    if (upHead.length > 0) socket.write(upHead);
    if (head.length > 0) upSocket.write(head);
    upSocket.pipe(socket);
    socket.pipe(upSocket);
  });
  // The worker declined the upgrade: relay its answer, delimited by closing the connection.
  upstream.on("response", (response) => {
    if (!handshaking) {
      response.destroy();
      return;
    }
    handshaking = false;
    clearTimeout(timer);
    client.take();
    // Read (and drop) what else the client sends, so that its leaving is seen.
    socket.resume();
    socket.write(
      headBlock(`HTTP/1.1 ${response.statusCode} ${response.statusMessage ?? ""}`, [
        ...responseHeadersForClient(response.rawHeaders),
        "Connection",
        "close",
      ]),
    );
    response.pipe(socket);
  });
  upstream.on("error", (err: NodeJS.ErrnoException) =>
    fail(
      `worker ${session.workerId} (pid ${session.workerPid}) of session ${session.id} failed: ${err.code ?? err.message}`,
    ),
  );
  // A body (Content-Length) goes to the worker as the request's: a worker that declines the
  // upgrade may read it before answering.
  const bodyLength = Number(req.headers["content-length"] ?? 0);
  if (bodyLength > 0) client.forwardBody(bodyLength, upstream);
  else upstream.end();
}
