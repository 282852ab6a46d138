// The data-plane server: one HTTP/1.1 listener that routes every request and WebSocket to its
// session's worker, on one of two paths: the fast path (fast/fast-connection.ts) takes every
// admitted connection and hands what it does not serve, as a HandOff value (hand-off.ts), to
// node:http's (node-http/node-http-server.ts: proxy-request.ts, proxy-upgrade.ts).
//
// Invariant: after close() resolves, the listener is closed, every proxied request and
// tunnel is destroyed (so their leases are closed) and every upstream agent is gone.
// Abuse bounds live here: open client connections, globally and per client address (503
// before the daemon runs out of descriptors, see src/limits/fd-budget.ts), header size (431),
// header deadline (slowloris, 408), body deadline with a minimum rate (slow bodies, 408, see
// body-deadline.ts); floods of new ids are bounded by each pool's queue limit (503) in the
// directory. A plain net.Server accepts and admits connections, then hands them to the fast
// path (the HTTP server never listens itself), so a refused connection never reaches a parser.
// In a cluster, a client connection whose request is for another node's session becomes a byte
// relay to that node (relay-hop.ts), and a connection another node relayed here is served as
// its client's own once its preamble verified (fast/fast-connection.ts).

import { createServer as createNetServer, type Socket } from "node:net";
import type { ClusterRouting, SessionRoutes, Tenancy, Tracer } from "../core/index.ts";
import {
  builtNativeRelay,
  CONFIG_DEFAULTS,
  isLoopback,
  LISTEN_HINT,
  type ListenAddress,
  type Logger,
  parseListenAddress,
  silentLogger,
} from "../core/index.ts";
import { ConnectionGate, connectionLimits, fdBudget, lingeringClose } from "../limits/index.ts";
import { ClientConnections } from "./client-connections.ts";
import { type DataPlaneCounters, zeroCounters } from "./data-plane-counters.ts";
import { FastConnection, type FastOptions } from "./fast/fast-connection.ts";
import { UpstreamPark } from "./fast/upstream-park.ts";
import { fromHerdError, writeErrorToSocket } from "./http-errors.ts";
import { NativeRelay } from "./native-relay.ts";
import { NodeHttpServer } from "./node-http/node-http-server.ts";
import { UpstreamAgents } from "./node-http/upstream-agents.ts";
import type { ProxyContext } from "./proxy-context.ts";
import { RelayHops } from "./relay-hop.ts";
import { SessionAccess } from "./session-access.ts";
import { WebAccess } from "./web-access.ts";

export interface DataPlaneOptions {
  /** "host:port", e.g. "127.0.0.1:8080"; port 0 picks a free one. */
  listen: string;
  /** Header carrying the session id (default X-Session-ID). */
  sessionHeader?: string;
  /** Unknown ids acquire a worker (default true); false: 404. */
  autoAcquire?: boolean;
  /** Require session tokens (default: true iff `listen` is not a loopback address). */
  tokens?: boolean;
  /** Pool for new sessions without X-Herd-Pool (default: the only pool, if there is one). */
  defaultPool?: string;
  /** Deadline for a request's headers (slowloris; default 10 s). */
  headerTimeoutMs?: number;
  /** Deadline for a whole request to arrive (default 0: none, 100 MB uploads take time). */
  requestTimeoutMs?: number;
  /** Largest request head accepted (default 16 KiB); larger → 431. */
  maxHeaderSize?: number;
  /** Time a request body gets to start arriving, extended by `bodyMinRate` (default 20 s; 0: none). */
  bodyTimeoutMs?: number;
  /** Bytes per second of body that extend the body deadline by a second each (default 500). */
  bodyMinRate?: number;
  /** Open client connections at most (default: from the fd limit, see fd-budget.ts; 0: none). */
  maxConnections?: number;
  /** Open client connections from one address at most (default: half of maxConnections). */
  maxConnectionsPerClient?: number;
  /** Host names answered besides IP addresses, localhost and the bound name (web-access.ts). */
  allowedHosts?: readonly string[];
  /** "{id}.sessions.example.com": route by Host, each session an origin of its own. */
  sessionHost?: string;
  /** In a cluster: how to find sessions of other nodes and check their forwards. */
  cluster?: ClusterRouting;
  /**
   * In a cluster, how a client connection reaches a session another node owns: "relay" (the
   * default) makes it a byte relay to the owner from that request on (relay-hop.ts);
   * "forward" proxies each request one hop (peer-forward.ts). Either way this node accepts
   * relayed connections.
   */
  hop?: "relay" | "forward";
  /** The tenants: X-Herd-Key names whose a new session is; another's session is unknown. */
  tenancy?: Tenancy;
  logger?: Logger;
  /** Set when tracing is on: a span per request, its worker sent `traceparent` (core/tracing.ts). */
  tracer?: Tracer;
  /**
   * A listening socket's handle a predecessor daemon handed over (restart, src/cli): served
   * instead of binding `listen` (which it was bound to).
   */
  inherited?: object;
  /**
   * The native tunnel relay's binary (native/tunnel-relay): open WebSocket tunnels are handed
   * to it after their upgrade (native-relay.ts). Default: the one scripts/setup-native.sh
   * built, if it did; false, or a relay that cannot start: tunnels `pipe`.
   */
  nativeRelay?: string | false;
}

export interface DataPlane {
  port: number;
  url: string;
  /** Live counters (forwarded requests, upstream connections opened). */
  counters: Readonly<DataPlaneCounters>;
  /** Open client connections right now. */
  readonly openConnections: number;
  /** The listening socket's handle, for a restart to hand to the successor. */
  readonly listenHandle: object;
  /** The native tunnel relay's pid, when one runs (native-relay.ts). */
  readonly nativeRelayPid: number | undefined;
  /** Accepts no more connections (a successor does); the open ones are served on. */
  stopAccepting(): void;
  close(): Promise<void>;
}

const KEEP_ALIVE_TIMEOUT_MS = 5_000;

/** How long a refused connection may linger to receive its 503 before it is destroyed. */
const REFUSED_LINGER_MS = 500;

/** The native tunnel relay, if `binary` is set and it starts; else tunnels `pipe`. */
function startNativeRelay(
  option: string | false | undefined,
  logger: Logger,
): NativeRelay | undefined {
  const binary = option ?? builtNativeRelay();
  if (binary === undefined || binary === false) return undefined;
  try {
    return new NativeRelay(binary, logger);
  } catch (err) {
    logger.warn({ err, binary }, "native tunnel relay did not start; tunnels use pipe");
    return undefined;
  }
}

function parseListen(listen: string): ListenAddress {
  const address = parseListenAddress(listen);
  if ("error" in address) {
    throw new Error(
      `data plane listen: ${JSON.stringify(listen)} is not host:port (${LISTEN_HINT})`,
    );
  }
  return address;
}

export async function startDataPlane(
  directory: SessionRoutes,
  opts: DataPlaneOptions,
): Promise<DataPlane> {
  const { host, port } = parseListen(opts.listen);
  const logger = opts.logger ?? silentLogger;
  const agents = new UpstreamAgents(directory, logger);
  const tokens = opts.tokens ?? !isLoopback(host);
  const nativeRelay = startNativeRelay(opts.nativeRelay, logger);
  const ctx: ProxyContext = {
    directory,
    logger,
    access: new SessionAccess(directory, {
      autoAcquire: opts.autoAcquire ?? true,
      tokens,
      defaultPool: opts.defaultPool,
      cluster: opts.cluster,
      tenancy: opts.tenancy,
    }),
    web: new WebAccess({
      bound: host,
      allowedHosts: opts.allowedHosts,
      sessionHost: opts.sessionHost,
    }),
    sessionHeader: (opts.sessionHeader ?? CONFIG_DEFAULTS.sessionHeader).toLowerCase(),
    counters: zeroCounters(),
    tracer: opts.tracer,
    connections: new ClientConnections(directory),
    nativeRelay,
    bodyRate: {
      timeoutMs: opts.bodyTimeoutMs ?? CONFIG_DEFAULTS.bodyTimeoutMs,
      minRate: opts.bodyMinRate ?? CONFIG_DEFAULTS.bodyMinRate,
    },
  };
  const park = new UpstreamPark();
  const budget = fdBudget();
  const gate = new ConnectionGate(
    connectionLimits(opts.maxConnections, opts.maxConnectionsPerClient, budget.dataConnections),
  );
  const headersTimeout = opts.headerTimeoutMs ?? 10_000;
  const maxHeaderSize = opts.maxHeaderSize ?? 16 * 1024;
  const nodeHttp = new NodeHttpServer(
    { ...ctx, agents },
    {
      maxHeaderSize,
      headersTimeoutMs: headersTimeout,
      requestTimeoutMs: opts.requestTimeoutMs ?? 0,
      keepAliveTimeoutMs: KEEP_ALIVE_TIMEOUT_MS,
    },
  );

  // Same socket options as http.Server's own listener (half-open: a client may send FIN
  // after its request and still read the answer).
  const fast = new Set<FastConnection>();
  const fastCtx = { ...ctx, park };
  const relays = new RelayHops(ctx);
  const fastOptions: FastOptions = {
    maxHeadBytes: maxHeaderSize,
    headersTimeoutMs: headersTimeout,
    keepAliveTimeoutMs: KEEP_ALIVE_TIMEOUT_MS,
    handOff: (handOff) => nodeHttp.adopt(handOff),
    gone: (connection) => fast.delete(connection),
    ...(opts.cluster !== undefined &&
      opts.hop !== "forward" && {
        relay: (...hop) => relays.start(...hop),
      }),
  };
  const listener = createNetServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
    const admission = gate.admit(socket);
    if (admission.ok) {
      fast.add(new FastConnection(fastCtx, socket, fastOptions));
      return;
    }
    refuse(socket, admission.reason);
  });
  const refuse = (socket: Socket, reason: string) => {
    logger.debug({ remote: socket.remoteAddress, reason }, "data plane: connection refused");
    socket.on("error", () => socket.destroy());
    writeErrorToSocket(socket, fromHerdError("unavailable", `too many connections: ${reason}`));
    lingeringClose(socket, REFUSED_LINGER_MS, "now");
  };
  try {
    await new Promise<void>((resolve, reject) => {
      listener.once("error", reject);
      const done = () => {
        listener.off("error", reject);
        resolve();
      };
      if (opts.inherited) listener.listen(opts.inherited, done);
      else listener.listen(port, host, done);
    });
    // The HTTP server never listens, but Node tracks its connections (header deadlines,
    // closeAllConnections) only once it has seen 'listening'.
    nodeHttp.listening();
  } catch (err) {
    agents.close();
    await nativeRelay?.stop();
    throw new Error(`data plane: cannot listen on ${opts.listen}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const address = listener.address();
  const boundPort = typeof address === "object" && address ? address.port : port;
  const urlHost = host.includes(":") ? `[${host}]` : host === "0.0.0.0" ? "127.0.0.1" : host;
  logger.info(
    {
      listen: `${host}:${boundPort}`,
      tokens,
      maxConnections: gate.limits.max,
      maxConnectionsPerClient: gate.limits.perClient,
      nofile: budget.nofile,
    },
    "data plane listening",
  );

  return {
    port: boundPort,
    url: `http://${urlHost}:${boundPort}`,
    counters: ctx.counters,
    get openConnections() {
      return gate.open;
    },
    get nativeRelayPid() {
      return nativeRelay?.pid;
    },
    get listenHandle() {
      return (listener as unknown as { _handle: object })._handle;
    },
    stopAccepting() {
      listener.close();
    },
    async close() {
      const closed = new Promise<void>((resolve) => listener.close(() => resolve()));
      nodeHttp.close();
      for (const connection of fast) connection.destroy();
      relays.close();
      agents.close();
      park.close();
      await closed;
      await nativeRelay?.stop();
    },
  };
}
