// `herd serve`: load the config, start the pools, the data plane and the control plane, and
// run until SIGTERM/SIGINT, then shut down in order (control plane: end streams, GOAWAY,
// drain; data plane; pools: kill every worker tree) and exit 0.
//
// Ports are probed before any worker starts, so a port in use fails at once, in one line,
// instead of after booting a pool of browsers.

import { existsSync } from "node:fs";
import { createServer } from "node:net";
import type { Logger as PinoLogger } from "pino";
import type { StartedCluster } from "../cluster/index.ts";
import { ConfigError, type HerdConfig, loadConfig } from "../config/index.ts";
import type { SessionDirectory } from "../core/index.ts";
import { parseListenAddress } from "../core/index.ts";
import { startDataPlane } from "../dataplane/index.ts";
import { Herd } from "../pool/index.ts";
import { sandboxLauncher } from "../sandbox/index.ts";
import { startControlPlane } from "../server/index.ts";
import { describeListenFailure, describeStartupError } from "./friendly-errors.ts";
import { createLogger } from "./logger.ts";

export interface ServeOptions {
  config: string;
  /** Overrides log.level from the config. */
  logLevel?: string;
  fail: (line: string) => void;
  /** Called once, when the daemon is ready (start-up is over). */
  started?: () => void;
}

/** Resolves with the exit code once the daemon has stopped. */
export async function serve(opts: ServeOptions): Promise<number> {
  if (!existsSync(opts.config)) {
    opts.fail(
      `no config file at ${opts.config}: pass --config FILE (examples/demo/herd.yaml is a working start)`,
    );
    return 2;
  }
  let config: HerdConfig;
  try {
    config = loadConfig(opts.config);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    opts.fail(err.message);
    return 2;
  }
  if (opts.logLevel) config.log.level = opts.logLevel as HerdConfig["log"]["level"];
  const logger = createLogger(config.log);
  const settings = {
    [config.control.listen]: "control.listen",
    [config.data.listen]: "data.listen",
    ...(config.control.socket && { [config.control.socket]: "control.socket" }),
  };

  for (const [listen, setting] of [
    [config.control.listen, "control.listen"],
    [config.data.listen, "data.listen"],
  ] as const) {
    const problem = await probeListen(listen);
    if (problem) {
      opts.fail(describeListenFailure(problem, listen, `${setting} in ${opts.config}`));
      return 1;
    }
  }

  let herd: Herd;
  try {
    // Workers never read the daemon's config: it may hold the control token.
    herd = await Herd.start(config.pools, {
      logger,
      eventHistory: config.events.history,
      watchBuffer: config.events.watchBuffer,
      sandbox: sandboxLauncher({ hide: [config.file] }),
    });
  } catch (err) {
    opts.fail(`the pools could not start: ${describeStartupError(err, settings)}`);
    return 1;
  }

  // Cluster mode only with a `cluster` section: the Redis client is never loaded otherwise.
  let cluster: StartedCluster | undefined;
  let directory: SessionDirectory = herd;
  if (config.cluster) {
    try {
      const { startCluster } = await import("../cluster/index.ts");
      cluster = await startCluster(herd, config.cluster, config.events.watchBuffer, logger);
      directory = cluster.directory;
    } catch (err) {
      await herd.close();
      opts.fail(`the cluster could not start: ${(err as Error).message}`);
      return 1;
    }
  }

  let data: Awaited<ReturnType<typeof startDataPlane>> | undefined;
  let control: Awaited<ReturnType<typeof startControlPlane>> | undefined;
  try {
    data = await startDataPlane(directory, {
      cluster: cluster?.directory,
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
      logger,
    });
    control = await startControlPlane(directory, {
      listen: config.control.listen,
      socket: config.control.socket,
      token: config.control.token,
      dataPlaneUrl: data.url,
      defaultPool: config.defaultPool,
      metrics: config.metrics.enabled,
      headerTimeoutMs: config.control.headerTimeoutMs,
      idleTimeoutMs: config.control.idleTimeoutMs,
      maxConnections: config.control.maxConnections,
      maxConnectionsPerClient: config.control.maxConnectionsPerClient,
      logger,
      ...(cluster && { peer: cluster.peer }),
    });
  } catch (err) {
    await data?.close();
    await herd.close();
    await cluster?.close();
    opts.fail(describeStartupError(err, settings));
    return 1;
  }

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
  opts.started?.();
  return waitForShutdown(logger, async () => {
    await control.close();
    await data.close();
    await herd.close();
    await cluster?.close();
  });
}

/** Resolves 0 after a clean shutdown; a second signal, or a stuck shutdown, exits 1 at once. */
function waitForShutdown(logger: PinoLogger, shutdown: () => Promise<void>): Promise<number> {
  return new Promise((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        logger.warn({ signal }, "second signal: exiting now (workers are killed on exit)");
        process.exit(1);
      }
      stopping = true;
      logger.info({ signal }, "shutting down");
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
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  });
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
