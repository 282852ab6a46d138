// The control plane server: herd.v1.HerdService, grpc.health.v1 and grpc.reflection.v1 over
// Connect, gRPC and gRPC-Web, HTTP/1.1 and h2c, on one TCP port (and optionally a Unix
// socket); plus GET /healthz, GET /metrics and the dashboard's static files under GET /ui.
//
// Lifecycle: start() resolves once every listener is bound. close() (idempotent): stop
// accepting, mark health NOT_SERVING, end every stream with UNAVAILABLE, send GOAWAY on every
// HTTP/2 session, let in-flight calls drain for up to `drainMs`, then destroy what is left.
// It never touches the directory's lifetime: whoever made the Herd closes it.
// Abuse bounds: a cap on open connections (over it: closed at once), a deadline for the
// first request's headers (HTTP/1.1 head; HTTP/2: first stream after the preface) and an
// idle deadline for connections with no call in flight. None applies to an open call, so
// HoldSession and WatchSessions streams live as long as their clients want; what bounds those
// is the cap on HTTP/2 streams per connection and the caps per caller (caller-limits.ts).

import { randomUUID } from "node:crypto";
import { setMaxListeners } from "node:events";
import { existsSync, unlinkSync } from "node:fs";
import { createServer as createHttp1Server } from "node:http";
import { createServer as createHttp2Server, type Http2Session } from "node:http2";
import { connect, type Server, type Socket } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import type { ConnectRouter } from "@connectrpc/connect";
import { file_grpc_health_v1_health, Health } from "../../gen/grpc/health/v1/health_pb.ts";
import {
  file_grpc_reflection_v1_reflection,
  ServerReflection,
} from "../../gen/grpc/reflection/v1/reflection_pb.ts";
import { file_herd_v1_herd, HerdService } from "../../gen/herd/v1/herd_pb.ts";
import type { SessionDirectory, SessionLogSource, Tenancy, Tracer } from "../core/index.ts";
import {
  CONFIG_DEFAULTS,
  formatHostPort,
  isLoopback,
  type Logger,
  parseListenAddress,
  silentLogger,
} from "../core/index.ts";
import { ConnectionGate, connectionLimits, fdBudget } from "../limits/index.ts";
import { callerContext } from "./caller.ts";
import { CallerLimits } from "./caller-limits.ts";
import { connectAdapter } from "./connect-adapter.ts";
import { serveDashboard } from "./dashboard.ts";
import { closeIfAnsweredEarly, resetIfAnsweredEarly } from "./early-response.ts";
import { healthService } from "./health-service.ts";
import { herdService, type NodeControl } from "./herd-service.ts";
import { limitIdleHttp2Session } from "./http2-idle.ts";
import {
  authInterceptor,
  bearerMatches,
  type ControlPeerCalls,
  errorAndMetricsInterceptor,
  peerInterceptor,
} from "./interceptors.ts";
import { ControlPlaneMetrics } from "./metrics.ts";
import { sniffingListener } from "./protocol-sniffer.ts";
import { reflectionService } from "./reflection-service.ts";
import { controlWebGuard } from "./web-guard.ts";

type NodeHandler = ReturnType<typeof connectAdapter>;

export interface ControlPlaneOptions {
  /** "host:port"; port 0 picks a free one. */
  listen: string;
  /** Also serve on this Unix socket path. */
  socket?: string;
  /** Why a new connection is refused before a byte is read (a worker of this host), if so. */
  refusePeer?: (socket: Socket) => string | undefined;
  /** Bearer token every call must carry (except health checks). */
  token?: string;
  /** Base URL of the data plane, returned with every session. */
  dataPlaneUrl: string;
  /** Pool for requests that name none (default: the directory's first pool). */
  defaultPool?: string;
  logger?: Logger;
  /** Heartbeat period on HoldSession streams (default 5 s). */
  heartbeatMs?: number;
  /** How long close() lets in-flight calls finish before cutting them (default 5 s). */
  drainMs?: number;
  /** Serve GET /metrics (default true). */
  metrics?: boolean;
  /** Time a connection gets to send its first request's headers (default 10 s). */
  headerTimeoutMs?: number;
  /** A connection with no call in flight is closed after this (default 30 s). */
  idleTimeoutMs?: number;
  /** Open connections at most, TCP and Unix socket together (default: from the fd limit). */
  maxConnections?: number;
  /** Open TCP connections from one client address at most (default 0: no per-address cap). */
  maxConnectionsPerClient?: number;
  /** HTTP/2 streams open at once on one connection (SETTINGS_MAX_CONCURRENT_STREAMS, default 100). */
  maxStreamsPerConnection?: number;
  /** WatchSessions streams one caller (caller.ts) may have open (default 256; 0: no cap). */
  maxWatchersPerCaller?: number;
  /** HoldSession streams one caller may have open (default 4096; 0: no cap). */
  maxHoldsPerCaller?: number;
  /** Cluster mode: how node-to-node calls are authenticated. */
  peer?: ControlPeerCalls;
  /** This node's drain, for DrainNode and GetStats' state. */
  node?: NodeControl;
  /** Where TailSessionLogs reads worker output (the Herd, or a cluster's directory). */
  logs?: SessionLogSource;
  /** Set when tracing is on: AcquireSession calls become spans (core/tracing.ts). */
  tracer?: Tracer;
  /** Host names answered besides IP addresses, localhost and the bound name (see src/edge). */
  allowedHosts?: readonly string[];
  /** The tenants: their keys are accepted besides `token`, each scoped to its own sessions. */
  tenancy?: Tenancy;
  /**
   * Restart (src/cli): the TCP listening socket's handle a predecessor daemon handed over,
   * served instead of binding `listen`, and the predecessor's instance_id (its revisions go on);
   * with `socket` set, its Unix socket's listening handle too, served instead of binding one.
   */
  inherited?: { handle: object; instanceId: string; socket?: object };
}

export interface ControlPlane {
  port: number;
  /** http://host:port */
  url: string;
  socket?: string;
  metrics: ControlPlaneMetrics;
  /** Open connections right now (TCP and Unix socket). */
  readonly openConnections: number;
  /** GetStats' instance_id. */
  readonly instanceId: string;
  /** The TCP listening socket's handle, for a restart to hand to the successor. */
  readonly listenHandle: object;
  /** The Unix socket's listening handle (with `socket`), for the same. */
  readonly socketHandle: object | undefined;
  /**
   * Stops accepting, lets in-flight calls finish (up to drainMs) and ends streams. "hand-over"
   * (a restart's successor serves now) keeps health answers SERVING, /healthz 200 with
   * `Connection: close`; "shutdown" (the default) turns them NOT_SERVING / 503.
   */
  close(reason?: CloseReason): Promise<void>;
}

export type CloseReason = "shutdown" | "hand-over";

/** Thrown when a listener cannot bind; `code` is the errno code (EADDRINUSE, EACCES, ...). */
export class ListenError extends Error {
  override readonly name = "ListenError";
  constructor(
    readonly address: string,
    readonly code: string | undefined,
    cause: unknown,
  ) {
    super(`cannot listen on ${address}: ${(cause as Error).message}`, { cause });
  }
}

const SERVICES = [
  { typeName: HerdService.typeName, file: file_herd_v1_herd },
  { typeName: Health.typeName, file: file_grpc_health_v1_health },
  { typeName: ServerReflection.typeName, file: file_grpc_reflection_v1_reflection },
];

export async function startControlPlane(
  directory: SessionDirectory,
  opts: ControlPlaneOptions,
): Promise<ControlPlane> {
  const logger = opts.logger ?? silentLogger;
  const addr = parseListenAddress(opts.listen);
  if ("error" in addr) throw new Error(`control plane listen: ${addr.error}`);
  if (opts.token === undefined && !isLoopback(addr.host)) {
    throw new Error(
      `control plane on ${opts.listen} is reachable from other machines: it needs a token`,
    );
  }
  if (opts.tenancy !== undefined && opts.token === undefined) {
    throw new Error("control plane: tenants need the operator's token");
  }
  const defaultPool = opts.defaultPool ?? directory.poolNames()[0];
  if (defaultPool === undefined) throw new Error("control plane: the directory has no pools");

  const shutdown = new AbortController();
  // Every hold and watch listens for the shutdown: thousands are normal, not a leak.
  setMaxListeners(0, shutdown.signal);
  /** Why the calls end, once close() began: a hand-over leaves the service healthy. */
  let ending: CloseReason | undefined;
  const handedOver = () => ending === "hand-over";
  const instanceId = opts.inherited?.instanceId ?? randomUUID();
  const metrics = new ControlPlaneMetrics(directory, logger);
  const limits = new CallerLimits({
    watchers: opts.maxWatchersPerCaller ?? CONFIG_DEFAULTS.controlMaxWatchersPerCaller,
    holds: opts.maxHoldsPerCaller ?? CONFIG_DEFAULTS.controlMaxHoldsPerCaller,
  });
  metrics.countStreams((kind) => limits.count(kind));
  const routes = (router: ConnectRouter) => {
    router.service(
      HerdService,
      herdService({
        directory,
        dataPlaneUrl: opts.dataPlaneUrl,
        defaultPool,
        logger,
        metrics,
        shutdown: shutdown.signal,
        heartbeatMs: opts.heartbeatMs,
        instanceId,
        limits,
        ...(opts.node && { node: opts.node }),
        ...(opts.logs && { logs: opts.logs }),
        ...(opts.tenancy && { tenancy: opts.tenancy }),
        ...(opts.tracer && { tracer: opts.tracer }),
      }),
    );
    router.service(Health, healthService([HerdService.typeName], shutdown.signal, handedOver));
    router.service(ServerReflection, reflectionService(SERVICES));
  };

  async function fallback(...[req, res]: Parameters<NodeHandler>): Promise<void> {
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    const send = (status: number, type: string, body: string) => {
      res.writeHead(status, { "content-type": type, "content-length": Buffer.byteLength(body) });
      res.end(body);
    };
    if (await serveDashboard(req, res, path)) return;
    if (req.method === "GET" && path === "/healthz") {
      if (!shutdown.signal.aborted) send(200, "text/plain", "ok\n");
      else if (handedOver()) {
        // The successor serves from now on: healthy, and the prober's next try goes to it.
        res.setHeader("connection", "close");
        send(200, "text/plain", "ok\n");
      } else send(503, "text/plain", "shutting down\n");
    } else if (req.method === "GET" && path === "/metrics" && opts.metrics !== false) {
      if (opts.token !== undefined && !bearerMatches(req.headers.authorization, opts.token)) {
        send(
          401,
          "application/json",
          JSON.stringify({ code: "unauthenticated", message: "bearer token required" }),
        );
        return;
      }
      const m = await metrics.render();
      send(200, m.contentType, m.body);
    } else {
      send(
        404,
        "application/json",
        JSON.stringify({ code: "not_found", message: `no route for ${req.method} ${path}` }),
      );
    }
  }

  const handler = connectAdapter({
    routes,
    fallback: (req, res) => {
      fallback(req, res).catch((err: unknown) => {
        logger.error({ err }, "control plane HTTP endpoint failed");
        if (!res.headersSent) res.writeHead(500);
        res.end();
      });
    },
    // Outermost first: errors of the auth check are translated and counted too.
    interceptors: [
      errorAndMetricsInterceptor(metrics, logger),
      ...(opts.peer ? [peerInterceptor(opts.peer)] : []),
      authInterceptor(opts.token, opts.tenancy),
    ],
    readMaxBytes: 4 * 1024 * 1024,
    contextValues: callerContext,
    onError: (rpc, err) => logger.error({ rpc, err }, "control plane call failed"),
  });

  const refusedWebRequest = controlWebGuard(addr.host, opts.allowedHosts);
  const headerTimeoutMs = opts.headerTimeoutMs ?? CONFIG_DEFAULTS.controlHeaderTimeoutMs;
  const idleTimeoutMs = opts.idleTimeoutMs ?? CONFIG_DEFAULTS.controlIdleTimeoutMs;
  // No per-address cap unless asked for: the control plane's usual clients are this host's
  // SDKs and CLI, all from one loopback address (or the Unix socket).
  const gate = new ConnectionGate(
    connectionLimits(
      opts.maxConnections,
      opts.maxConnectionsPerClient ?? 0,
      fdBudget().controlConnections,
    ),
  );
  const admit = (socket: Socket) => {
    const refused = opts.refusePeer?.(socket);
    if (refused) {
      logger.warn({ remote: socket.remoteAddress }, `control plane: refused ${refused}`);
      return false;
    }
    const admission = gate.admit(socket);
    if (!admission.ok)
      logger.debug({ reason: admission.reason }, "control plane: connection refused");
    return admission.ok;
  };
  const h1 = createHttp1Server(
    {
      headersTimeout: headerTimeoutMs,
      // Node's default (300 s) unless the header deadline is longer; it must not be shorter.
      requestTimeout: Math.max(300_000, headerTimeoutMs),
      // Node checks the two deadlines above on this period (default 30 s).
      connectionsCheckingInterval: Math.max(100, Math.min(1000, headerTimeoutMs / 4)),
      keepAliveTimeout: idleTimeoutMs,
    },
    (req, res) => {
      closeIfAnsweredEarly(req, res);
      if (!refusedWebRequest(req, res)) handler(req, res);
    },
  );
  // h1 never listens itself (the sniffer hands it sockets), but Node only tracks connections,
  // and so enforces header timeouts and can close idle keep-alives, once 'listening' fired.
  h1.emit("listening");
  // Advertised in SETTINGS and enforced by nghttp2 whether the client heeds it or not: a stream
  // past it is refused (RST_STREAM), and a client that keeps opening them is disconnected.
  const h2Settings = {
    maxConcurrentStreams:
      opts.maxStreamsPerConnection ?? CONFIG_DEFAULTS.controlMaxStreamsPerConnection,
  };
  const h2 = createHttp2Server({ settings: h2Settings }, (req, res) => {
    resetIfAnsweredEarly(req, res);
    if (!refusedWebRequest(req, res)) handler(req, res);
  });
  const sessions = new Set<Http2Session>();
  h2.on("session", (s) => {
    if (shutdown.signal.aborted) {
      s.close();
      return;
    }
    sessions.add(s);
    s.once("close", () => sessions.delete(s));
    limitIdleHttp2Session(s, { headerTimeoutMs, idleTimeoutMs });
    s.on("error", (err) => logger.debug({ err }, "HTTP/2 session error"));
  });
  h2.on("sessionError", (err) => logger.debug({ err }, "HTTP/2 session error"));

  const sniff = { sniffTimeoutMs: headerTimeoutMs, admit };
  const tcp = sniffingListener(h1, h2, sniff);
  const unix = opts.socket === undefined ? undefined : sniffingListener(h1, h2, sniff);
  let port: number;
  try {
    port = await listenTcp(
      tcp.server,
      opts.inherited?.handle ?? { host: addr.host, port: addr.port },
      formatHostPort(addr.host, addr.port),
    );
    if (unix && opts.inherited?.socket)
      await listenTcp(unix.server, opts.inherited.socket, opts.socket ?? "");
    else if (unix && opts.socket) await listenUnix(unix.server, opts.socket);
  } catch (err) {
    tcp.server.close();
    unix?.server.close();
    metrics.close();
    throw err;
  }
  const url = `http://${formatHostPort(addr.host === "0.0.0.0" ? "127.0.0.1" : addr.host === "::" ? "::1" : addr.host, port)}`;
  logger.info(
    {
      url,
      socket: opts.socket,
      maxConnections: gate.limits.max,
      maxConnectionsPerClient: gate.limits.perClient,
      maxStreamsPerConnection: h2Settings.maxConcurrentStreams,
    },
    "control plane listening",
  );

  let closing: Promise<void> | undefined;
  const close = (reason: CloseReason = "shutdown") => {
    ending ??= reason;
    closing ??= (async () => {
      const drainMs = opts.drainMs ?? 5000;
      tcp.stop();
      unix?.stop();
      shutdown.abort();
      for (const s of sessions) if (!s.closed) s.close();
      h1.close();
      h1.closeIdleConnections();
      const deadline = Date.now() + drainMs;
      const open = () => tcp.sockets.size + (unix?.sockets.size ?? 0);
      while (open() > 0 && Date.now() < deadline) {
        h1.closeIdleConnections();
        await sleep(20);
      }
      for (const s of [...tcp.sockets, ...(unix?.sockets ?? [])]) s.destroy();
      h2.close();
      metrics.close();
      if (opts.socket && existsSync(opts.socket)) unlinkSync(opts.socket);
      logger.info({}, "control plane closed");
    })();
    return closing;
  };

  return {
    port,
    url,
    socket: opts.socket,
    metrics,
    get openConnections() {
      return gate.open;
    },
    instanceId,
    get listenHandle() {
      return (tcp.server as unknown as { _handle: object })._handle;
    },
    get socketHandle() {
      return (unix?.server as unknown as { _handle: object } | undefined)?._handle;
    },
    close,
  };
}

/** Binds `where` (host and port), or serves a listening socket's handle handed over (TCP or
 * Unix: a Unix one is served through its fd, and is not unlinked when this server closes). */
function listenTcp(
  server: Server,
  where: { host: string; port: number } | object,
  shown: string,
): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) =>
      reject(new ListenError(shown, err.code, err)),
    );
    server.listen(where, () => {
      const a = server.address();
      resolve(typeof a === "object" && a ? a.port : 0);
    });
  });
}

/** A socket file left by a dead daemon is removed; one a live daemon answers on is not. */
async function listenUnix(server: Server, path: string): Promise<void> {
  if (existsSync(path)) {
    const alive = await new Promise<boolean>((resolve) => {
      const c = connect(path);
      c.once("connect", () => {
        c.destroy();
        resolve(true);
      });
      c.once("error", () => resolve(false));
    });
    if (alive)
      throw new ListenError(
        path,
        "EADDRINUSE",
        new Error("another process is serving on this socket"),
      );
    unlinkSync(path);
  }
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) =>
      reject(new ListenError(path, err.code, err)),
    );
    server.listen(path, () => resolve());
  });
}
