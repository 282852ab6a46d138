// `herd serve`: load the config, start the pools, the data plane and the control plane, and
// run until drained — SIGTERM or DrainNode (`herd drain`) starts the drain: no new sessions,
// the live ones served until they end or drain_timeout passes — then shut down in order
// (control plane: end streams, GOAWAY, drain; data plane; pools: kill every worker tree left;
// cluster: share the last events, leave) and exit 0. SIGINT (Ctrl-C) or a second SIGTERM stops
// at once, without waiting for live sessions; one more signal, or a stuck shutdown, exits 1.
//
// Ports are probed before any worker starts, so a port in use fails at once, in one line,
// instead of after booting a pool of browsers.
//
// Restart in place (restart.ts): SIGUSR2 or RestartNode starts a new `herd serve` with an IPC
// channel; that one (`takeOverAddresses()` set) validates its config, says why it refuses or
// takes the old one's listeners and sessions instead of binding and starting afresh.

import { existsSync } from "node:fs";
import { createServer } from "node:net";
import { hostname } from "node:os";
import { join, relative } from "node:path";
import type { Logger as PinoLogger } from "pino";
import type { StartedCluster } from "../cluster/index.ts";
import {
  ConfigError,
  type ConfigIssue,
  formatWarning,
  type HerdConfig,
  loadConfig,
} from "../config/index.ts";
import type { SessionDirectory, Tracer } from "../core/index.ts";
import { NodeDrain, parseListenAddress, tracingRequested } from "../core/index.ts";
import { startDataPlane } from "../dataplane/index.ts";
import { Herd } from "../pool/index.ts";
import { HiddenSocket, sandboxLauncher, scrubEnviron, workerPeer } from "../sandbox/index.ts";
import { startControlPlane } from "../server/index.ts";
import { Tenants, tenantWeights } from "../tenants/index.ts";
import { describeListenFailure, describeStartupError } from "./friendly-errors.ts";
import { createLogger } from "./logger.ts";
import { packageRoot } from "./package-root.ts";
import {
  Restarter,
  receiveTakeOver,
  refuseTakeOver,
  type TakeOver,
  type TakeOverAddresses,
  takeOverAddresses,
} from "./restart.ts";
import { notifySystemd } from "./systemd-notify.ts";

export interface ServeOptions {
  config: string;
  /** Overrides log.level from the config. */
  logLevel?: string;
  /** Overrides log.format from the config (`herd serve --json`). */
  logFormat?: "json";
  fail: (line: string) => void;
  /** Called once, when the daemon is ready (start-up is over). */
  started?: () => void;
}

/** Resolves with the exit code once the daemon has stopped. */
export async function serve(opts: ServeOptions): Promise<number> {
  // A restart's new process: the old one hears why it refuses, and keeps serving.
  const successorOf = takeOverAddresses();
  const say = opts.fail; // not opts.fail inside: opts is replaced just below
  const fail = successorOf
    ? (line: string) => {
        refuseTakeOver(line);
        say(line);
      }
    : say;
  opts = { ...opts, fail };
  if (!existsSync(opts.config)) {
    // The demo ships in the package: name it where it is, as the user would type it here.
    const demo = join(packageRoot(), "examples/demo/herd.yaml");
    const shown = relative(process.cwd(), demo);
    opts.fail(
      `no config file at ${opts.config}: pass --config FILE (${shown.startsWith("..") ? demo : shown} is a working start)`,
    );
    return 2;
  }
  let config: HerdConfig;
  const warnings: ConfigIssue[] = [];
  try {
    config = loadConfig(opts.config, { onWarning: (w) => warnings.push(w) });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    opts.fail(err.message);
    return 2;
  }
  const cannot = successorOf && takeOverProblem(config, successorOf);
  if (cannot) {
    opts.fail(`${opts.config}: ${cannot}`);
    return 2;
  }
  if (opts.logLevel) config.log.level = opts.logLevel as HerdConfig["log"]["level"];
  if (opts.logFormat) config.log.format = opts.logFormat;
  const logger = createLogger(config.log);
  for (const w of warnings) logger.warn(formatWarning(w));
  // The config has read its secrets: out of /proc/<pid>/environ, where a worker could read them.
  // A restart's new process reads them again: it gets them from this one (secretEnv).
  const environ = { ...process.env };
  const secretEnv: Record<string, string> = {};
  try {
    const removed = scrubEnviron(
      [
        config.control.token ?? "",
        config.cluster?.secret ?? "",
        config.cluster?.redisUrl ?? "",
        ...(config.tenants ?? []).map((t) => t.key),
      ],
      // The OTLP exporter's headers often carry the collector's token (startTracing gets them).
      [
        "HERD_TOKEN",
        "HERD_CLUSTER_SECRET",
        "HERD_REDIS_URL",
        "OTEL_EXPORTER_OTLP_HEADERS",
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
      ],
    );
    for (const name of removed) secretEnv[name] = environ[name] ?? "";
    if (removed.length > 0) logger.debug({ removed }, "secrets removed from the environment");
  } catch (err) {
    logger.warn({ err }, "could not remove the secrets from /proc/self/environ");
  }
  const settings = {
    [config.control.listen]: "control.listen",
    [config.data.listen]: "data.listen",
    ...(config.control.socket && { [config.control.socket]: "control.socket" }),
  };

  let take: TakeOver | undefined;
  if (successorOf) {
    try {
      take = await receiveTakeOver();
    } catch (err) {
      // Nothing here is owned yet: leaving drops the lifelines this process held (the old
      // process holds them too, if it still runs).
      opts.fail(`restart: ${(err as Error).message}`);
      return 1;
    }
  }
  // The listeners of a take-over are the old process's, bound already.
  for (const [listen, setting] of take
    ? []
    : ([
        [config.control.listen, "control.listen"],
        [config.data.listen, "data.listen"],
      ] as const)) {
    const problem = await probeListen(listen);
    if (problem) {
      opts.fail(describeListenFailure(problem, listen, `${setting} in ${opts.config}`));
      return 1;
    }
  }

  // Tracing only when the OTEL_* variables ask for it: otherwise the SDK is never loaded.
  let tracer: Tracer | undefined;
  if (tracingRequested(process.env)) {
    const { startTracing } = await import("../telemetry/index.ts");
    tracer = startTracing(logger, environ);
  }

  const drain = new NodeDrain(config.drainTimeoutMs);
  // The control socket listens where no sandboxed worker sees it (hidden-socket.ts).
  const socket = config.control.socket ? new HiddenSocket(config.control.socket) : undefined;
  let herd: Herd;
  try {
    // Workers never read the daemon's config: it may hold the control token.
    herd = await Herd.start(config.pools, {
      logger,
      eventHistory: config.events.history,
      watchBuffer: config.events.watchBuffer,
      sandbox: sandboxLauncher({ hide: [config.file] }),
      drain,
      // Each tenant's weight in a full pool's queue (the pool's fair share, HerdOptions.tenantWeight).
      ...(config.tenants && { tenantWeight: tenantWeights(config.tenants) }),
      ...(take && {
        adopt: take.handOff,
        adopted: (h: Herd) => void take.adopted(h),
      }),
    });
  } catch (err) {
    socket?.close();
    opts.fail(`the pools could not start: ${describeStartupError(err, settings)}`);
    return 1;
  }

  // Cluster mode only with a `cluster` section: the Redis client is never loaded otherwise.
  let cluster: StartedCluster | undefined;
  let directory: SessionDirectory = herd;
  if (config.cluster) {
    try {
      const { startCluster } = await import("../cluster/index.ts");
      cluster = await startCluster(
        herd,
        config.cluster,
        config.events.watchBuffer,
        logger,
        drain,
        take?.cluster,
      );
      directory = cluster.directory;
      herd.explainDeaths(cluster.deathCause);
    } catch (err) {
      // A restart's new process leaves what it adopted to the old one, which takes it back.
      if (!take) await herd.close();
      opts.fail(`the cluster could not start: ${(err as Error).message}`);
      return 1;
    }
  }

  const tenancy =
    config.tenants && config.control.token !== undefined
      ? new Tenants(directory, {
          tenants: config.tenants,
          operatorToken: config.control.token,
          ...(config.data.anonymousTenant !== undefined && {
            anonymousTenant: config.data.anonymousTenant,
          }),
          ...(cluster && { rates: cluster.rates, maxSessions: cluster.maxSessions }),
        })
      : undefined;

  let data: Awaited<ReturnType<typeof startDataPlane>> | undefined;
  let control: Awaited<ReturnType<typeof startControlPlane>> | undefined;
  try {
    data = await startDataPlane(directory, {
      cluster: cluster?.directory,
      ...(config.cluster?.hop && { hop: config.cluster.hop }),
      listen: config.data.listen,
      sessionHeader: config.data.sessionHeader,
      autoAcquire: config.data.autoAcquire,
      tokens: config.data.tokensRequired,
      defaultPool: config.defaultPool,
      headerTimeoutMs: config.data.headerTimeoutMs,
      maxHeaderSize: config.data.maxHeaderSize,
      bodyTimeoutMs: config.data.bodyTimeoutMs,
      bodyMinRate: config.data.bodyMinRate,
      maxConnections: config.data.maxConnections,
      maxConnectionsPerClient: config.data.maxConnectionsPerClient,
      allowedHosts: config.data.allowedHosts,
      sessionHost: config.data.sessionHost,
      // Unset: the native tunnel relay when it was built (src/dataplane/native-relay.ts).
      ...(config.data.nativeRelay === false && { nativeRelay: false }),
      ...(tenancy && { tenancy }),
      logger,
      ...(tracer && { tracer }),
      ...(take && { inherited: take.listeners.data }),
    });
    control = await startControlPlane(directory, {
      listen: config.control.listen,
      socket: socket?.listenPath,
      // A worker on the host's network must not drive the control plane (worker-peer.ts).
      refusePeer: workerPeer,
      token: config.control.token,
      dataPlaneUrl: data.url,
      defaultPool: config.defaultPool,
      metrics: config.metrics.enabled,
      headerTimeoutMs: config.control.headerTimeoutMs,
      idleTimeoutMs: config.control.idleTimeoutMs,
      maxConnections: config.control.maxConnections,
      maxConnectionsPerClient: config.control.maxConnectionsPerClient,
      maxStreamsPerConnection: config.control.maxStreamsPerConnection,
      maxWatchersPerCaller: config.control.maxWatchersPerCaller,
      maxHoldsPerCaller: config.control.maxHoldsPerCaller,
      allowedHosts: config.control.allowedHosts,
      logger,
      ...(take && {
        inherited: {
          handle: take.listeners.control,
          instanceId: take.instanceId,
          ...(take.listeners.socket && { socket: take.listeners.socket.handle }),
        },
      }),
      ...(cluster && { peer: cluster.peer }),
      logs: cluster?.directory ?? herd,
      ...(tenancy && { tenancy }),
      ...(tracer && { tracer }),
      node: {
        drain,
        localSessions: () => herd.sessions().length,
        ...(config.cluster && { clusterNode: config.cluster.node }),
        restart: () => restarter.restart(),
      },
    });
    if (take?.listeners.socket) socket?.takeOver(take.listeners.socket.path);
    else await socket?.publish();
  } catch (err) {
    await control?.close();
    socket?.close();
    await data?.close();
    await herd.close();
    await cluster?.close();
    await tracer?.shutdown();
    opts.fail(describeStartupError(err, settings));
    return 1;
  }

  const [dataPlane, controlPlane] = [data, control];
  const restarter = new Restarter({
    herd,
    logger,
    // The code on disk now: bin/herd again (in a checkout it rebuilds dist/ from src/ first).
    command: {
      file: process.execPath,
      args: [
        ...process.execArgv,
        process.argv[1] ?? "",
        "serve",
        "--config",
        opts.config,
        ...(opts.logLevel ? ["--log-level", opts.logLevel] : []),
        ...(opts.logFormat ? ["--json"] : []),
      ],
      env: secretEnv,
    },
    addresses: {
      data: config.data.listen,
      control: config.control.listen,
      ...(config.cluster && { node: config.cluster.node }),
      ...(config.control.socket && { socket: config.control.socket }),
    },
    listeners: () => {
      const handle = controlPlane.socketHandle;
      return {
        data: dataPlane.listenHandle,
        control: controlPlane.listenHandle,
        ...(socket && handle && { socket: { handle, path: socket.listenPath } }),
      };
    },
    reclaimed: () => socket?.repoint(),
    instanceId: () => controlPlane.instanceId,
    leave: () => {
      dataPlane.stopAccepting();
      void controlPlane.close("hand-over");
      drain.begin();
    },
    ...(cluster && { cluster }),
  });
  if (take) {
    take.onTouch((id) => herd.touch(id));
    // Under systemd the unit's main process is this one from now on (docs/operations.md).
    await notifySystemd(logger, [`MAINPID=${process.pid}`, "READY=1"]);
    await take.serving(herd);
    logger.info({ sessions: take.handOff.sessions.length }, "restart: took over");
  }
  process.on("SIGUSR2", () => {
    restarter.restart().then(
      (r) => logger.info(r, "restart done"),
      (err: unknown) => logger.warn({ err: (err as Error).message }, "restart did not happen"),
    );
  });
  logger.info(
    {
      control: control.url,
      data: data.url,
      socket: config.control.socket,
      pools: config.pools.map((p) => p.name),
      config: config.file,
    },
    "herd is ready",
  );
  if (!take) await notifySystemd(logger, ["READY=1"]);
  opts.started?.();
  return runUntilStopped(
    logger,
    drain,
    () => ({ sessions: herd.sessions().length, connections: data.openConnections }),
    async () => {
      await control.close();
      socket?.close();
      await data.close();
      await herd.close();
      await cluster?.close();
      // Last: the spans of everything above are sent before the daemon exits.
      await tracer?.shutdown();
    },
  );
}

/**
 * Resolves with the exit code once the daemon has stopped: 0 after a drain (SIGTERM or
 * DrainNode) and a clean shutdown; 1 when the shutdown failed. Signals: a first SIGTERM drains
 * (or joins the drain under way); SIGINT, or a second SIGTERM, stops without waiting for live
 * sessions; one more exits at once (workers are killed on exit).
 */
function runUntilStopped(
  logger: PinoLogger,
  drain: NodeDrain,
  busy: () => Busy,
  shutdown: () => Promise<void>,
): Promise<number> {
  return new Promise((resolve) => {
    let signals = 0;
    let stopping = false;
    const stopNow = new AbortController();
    const onSignal = (signal: NodeJS.Signals) => {
      signals++;
      if (stopping || stopNow.signal.aborted) {
        logger.warn({ signal }, "another signal: exiting now (workers are killed on exit)");
        process.exit(1);
      }
      // Ctrl-C is someone at a terminal: stop now. SIGTERM is a supervisor's polite stop: drain.
      if (signals === 1 && signal === "SIGINT") {
        logger.info({ signal }, "SIGINT: stopping now (SIGTERM or herd drain would drain)");
        stopNow.abort();
      } else if (signals === 1) {
        logger.info({ signal }, "signal: draining");
      } else {
        logger.warn({ signal }, "second signal: stopping now, without waiting for live sessions");
        stopNow.abort();
      }
      drain.begin();
    };
    const stop = () => {
      stopping = true;
      logger.info({}, "shutting down");
      const stuck = setTimeout(() => {
        logger.error({}, "shutdown took longer than 20s: exiting now");
        process.exit(1);
      }, 20_000);
      stuck.unref();
      shutdown().then(
        () => {
          clearTimeout(stuck);
          process.off("SIGTERM", onSignal);
          process.off("SIGINT", onSignal);
          logger.info({}, "herd stopped");
          resolve(0);
        },
        (err: unknown) => {
          logger.error({ err }, "shutdown failed");
          resolve(1);
        },
      );
    };
    drain.begun.addEventListener(
      "abort",
      () => {
        const state = drain.state;
        const deadline = state.kind === "draining" ? state.deadline : Date.now();
        const { sessions, connections } = busy();
        logger.info(
          { sessions, connections, drainTimeoutMs: drain.timeoutMs },
          `draining: no new sessions; stopping once ${sessions} live session(s) end and ${connections} data-plane connection(s) close, within ${Math.round(drain.timeoutMs / 1000)}s`,
        );
        void drained(busy, deadline, stopNow.signal).then((how) => {
          if (how === "timeout") {
            logger.warn(busy(), "drain_timeout passed: stopping with live sessions or connections");
          } else if (how === "drained") {
            logger.info({}, "drained: no live session left, no data-plane connection open");
          }
          stop();
        });
      },
      { once: true },
    );
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  });
}

/**
 * What keeps a draining node up: its live sessions, and its open data-plane client connections
 * (in a cluster many carry sessions of other nodes, which this one forwards: its clients are
 * mid-conversation; an idle keep-alive one closes within the data plane's keep-alive timeout).
 */
interface Busy {
  sessions: number;
  connections: number;
}

/** Resolves once nothing keeps the node busy, the deadline passed, or `now` aborted. */
async function drained(
  busy: () => Busy,
  deadline: number,
  now: AbortSignal,
): Promise<"drained" | "timeout" | "forced"> {
  for (;;) {
    if (now.aborted) return "forced";
    const { sessions, connections } = busy();
    if (sessions === 0 && connections === 0) return "drained";
    if (Date.now() >= deadline) return "timeout";
    await new Promise((r) => setTimeout(r, Math.min(100, Math.max(1, deadline - Date.now()))));
  }
}

/**
 * Why the config on disk cannot take over from the daemon listening on `running`. A cluster
 * node goes on as the same node: a `cluster.node` left to its default (hostname-pid, this
 * process's pid) is set to the running one's name here.
 */
function takeOverProblem(config: HerdConfig, running: TakeOverAddresses): string | undefined {
  const cluster = config.cluster;
  if ((cluster === undefined) !== (running.node === undefined)) {
    return `cluster: ${cluster ? "added" : "removed"}; a restart keeps the node in (or out of) its cluster (drain, stop and start to change it)`;
  }
  if (cluster && running.node !== undefined && cluster.node !== running.node) {
    if (cluster.node !== `${hostname()}-${process.pid}`) {
      return `cluster.node: ${cluster.node} differs from the running daemon's ${running.node}; a restart keeps the node (drain, stop and start to rename it)`;
    }
    cluster.node = running.node;
  }
  for (const [key, now, was] of [
    ["data.listen", config.data.listen, running.data],
    ["control.listen", config.control.listen, running.control],
    ["control.socket", config.control.socket ?? "(none)", running.socket ?? "(none)"],
  ] as const) {
    if (now !== was) {
      return `${key}: ${now} differs from the running daemon's ${was}; a restart keeps the listening sockets (stop and start to move them)`;
    }
  }
  return undefined;
}

/** The errno code if host:port cannot be bound right now (port 0 always can). */
async function probeListen(listen: string): Promise<string | undefined> {
  const addr = parseListenAddress(listen);
  if ("error" in addr || addr.port === 0) return undefined;
  return new Promise((resolve) => {
    const s = createServer();
    s.once("error", (err: NodeJS.ErrnoException) => resolve(err.code ?? "unknown"));
    s.listen({ host: addr.host, port: addr.port, exclusive: true }, () =>
      s.close(() => resolve(undefined)),
    );
  });
}
