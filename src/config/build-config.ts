// From the schema's output to a HerdConfig: defaults, pool options through the pool's own
// resolvePoolOptions, and the checks that span several keys or look at the host (does the
// command exist, does cwd exist). Every problem is reported with the config path it is about.

import { accessSync, constants, statSync } from "node:fs";
import { hostname } from "node:os";
import { delimiter, isAbsolute, join, resolve } from "node:path";
import type { IsolationOptions, PoolOptions, ReadyCheck } from "../core/index.ts";
import {
  CONFIG_DEFAULTS,
  formatHostPort,
  isHerdError,
  isLoopback,
  type ListenAddress,
  listenClash,
  parseListenAddress,
} from "../core/index.ts";
import { resolvePoolOptions } from "../pool/index.ts";
import { isolationProblems } from "../sandbox/index.ts";
import { didYouMean } from "./did-you-mean.ts";
import type { ClusterConfig, HerdConfig } from "./herd-config.ts";
import { portTemplateIssues } from "./port-template.ts";
import type { RawCluster, RawConfig, RawPool } from "./schema.ts";
import { buildTenants } from "./tenants-config.ts";
import type { PathIssue } from "./zod-issues.ts";

export interface BuildContext {
  /** Absolute path of the config file; relative `cwd`s resolve against its directory. */
  file: string;
  env: Readonly<Record<string, string | undefined>>;
  /** Look for each pool's program on disk / PATH (off for configs meant for another host). */
  checkCommands: boolean;
  /** Where to put what is worth saying but does not stop a start (e.g. no port in `cmd`). */
  warnings?: PathIssue[];
}

export function buildConfig(
  raw: RawConfig,
  ctx: BuildContext,
): { config: HerdConfig } | { issues: PathIssue[] } {
  const issues: PathIssue[] = [];
  const baseDir = resolve(ctx.file, "..");

  const pools: PoolOptions[] = [];
  for (const [name, rawPool] of Object.entries(raw.workers)) {
    const templates = portTemplateIssues(name, rawPool);
    issues.push(...templates.errors);
    ctx.warnings?.push(...templates.warnings);
    const pool = buildPool(name, rawPool, baseDir, issues);
    if (pool === undefined) continue;
    pools.push(pool);
    if (ctx.checkCommands) {
      checkProgram(pool, ctx.env, issues);
      for (const problem of isolationProblems(pool.isolation)) {
        issues.push({
          path: ["workers", name, "isolation", problem.key],
          message: problem.message,
        });
      }
    }
  }

  const names = Object.keys(raw.workers);
  let defaultPool = names[0]!;
  if (raw.default_pool !== undefined) {
    defaultPool = raw.default_pool;
    if (!names.includes(defaultPool)) {
      const guess = didYouMean(defaultPool, names);
      issues.push({
        path: ["default_pool"],
        message: `no pool named ${JSON.stringify(defaultPool)} under workers${guess ? ` (did you mean ${JSON.stringify(guess)}?)` : ` (pools: ${names.join(", ")})`}`,
      });
    }
  }

  const control = raw.control ?? {};
  const controlListen = control.listen ?? parseDefault(CONFIG_DEFAULTS.controlListen);
  let token = control.token;
  if (control.token !== undefined && control.token_env !== undefined) {
    issues.push({ path: ["control", "token_env"], message: "set token or token_env, not both" });
  } else if (control.token_env !== undefined) {
    token = ctx.env[control.token_env] || undefined;
    if (token === undefined) {
      issues.push({
        path: ["control", "token_env"],
        message: `environment variable ${control.token_env} is not set (or empty)`,
      });
    }
  } else if (token === undefined && !isLoopback(controlListen.host)) {
    issues.push({
      path: ["control", "listen"],
      message: `${formatHostPort(controlListen.host, controlListen.port)} is reachable from other machines, so the control plane needs a token: set control.token or control.token_env`,
    });
  }

  const data = raw.data ?? {};
  const dataListen = data.listen ?? parseDefault(CONFIG_DEFAULTS.dataListen);
  const tokens = data.tokens ?? "auto";
  if (listenClash(controlListen, dataListen)) {
    const ctl = `control.listen ${formatHostPort(controlListen.host, controlListen.port)}`;
    const dat = `data.listen ${formatHostPort(dataListen.host, dataListen.port)}`;
    // Point at whichever the file sets; the other is the default.
    const onData = data.listen !== undefined;
    issues.push({
      path: onData ? ["data", "listen"] : ["control", "listen"],
      message: `${onData ? dat : ctl} takes the port of ${onData ? ctl : `${dat} (the default)`}: the control plane and the data plane need different ports`,
    });
  }

  const cluster =
    raw.cluster &&
    buildCluster(raw.cluster, { control: controlListen, data: dataListen }, ctx.env, issues);

  const tenants = buildTenants(
    raw.tenants,
    { baseDir, env: ctx.env, pools: names, token, anonymousTenant: data.anonymous_tenant },
    issues,
  );

  if (issues.length > 0) return { issues };
  return {
    config: {
      file: ctx.file,
      pools,
      defaultPool,
      drainTimeoutMs: raw.drain_timeout ?? CONFIG_DEFAULTS.drainTimeoutMs,
      control: {
        listen: formatHostPort(controlListen.host, controlListen.port),
        ...(control.socket !== undefined && { socket: resolve(baseDir, control.socket) }),
        ...(token !== undefined && { token }),
        headerTimeoutMs: control.header_timeout ?? CONFIG_DEFAULTS.controlHeaderTimeoutMs,
        idleTimeoutMs: control.idle_timeout ?? CONFIG_DEFAULTS.controlIdleTimeoutMs,
        ...(control.max_connections !== undefined && { maxConnections: control.max_connections }),
        ...(control.max_connections_per_client !== undefined && {
          maxConnectionsPerClient: control.max_connections_per_client,
        }),
        maxStreamsPerConnection:
          control.max_streams_per_connection ?? CONFIG_DEFAULTS.controlMaxStreamsPerConnection,
        maxWatchersPerCaller:
          control.max_watchers_per_caller ?? CONFIG_DEFAULTS.controlMaxWatchersPerCaller,
        maxHoldsPerCaller: control.max_holds_per_caller ?? CONFIG_DEFAULTS.controlMaxHoldsPerCaller,
        ...(control.allowed_hosts !== undefined && { allowedHosts: control.allowed_hosts }),
      },
      data: {
        listen: formatHostPort(dataListen.host, dataListen.port),
        sessionHeader: data.session_header ?? CONFIG_DEFAULTS.sessionHeader,
        autoAcquire: data.auto_acquire ?? true,
        tokens,
        tokensRequired:
          tokens === "required" || (tokens === "auto" && !isLoopback(dataListen.host)),
        ...(data.header_timeout !== undefined && { headerTimeoutMs: data.header_timeout }),
        ...(data.max_header_size !== undefined && { maxHeaderSize: data.max_header_size }),
        bodyTimeoutMs: data.body_timeout ?? CONFIG_DEFAULTS.bodyTimeoutMs,
        bodyMinRate: data.body_min_rate ?? CONFIG_DEFAULTS.bodyMinRate,
        ...(data.max_connections !== undefined && { maxConnections: data.max_connections }),
        ...(data.max_connections_per_client !== undefined && {
          maxConnectionsPerClient: data.max_connections_per_client,
        }),
        ...(data.allowed_hosts !== undefined && { allowedHosts: data.allowed_hosts }),
        ...(data.session_host !== undefined && { sessionHost: data.session_host }),
        ...(data.anonymous_tenant !== undefined && { anonymousTenant: data.anonymous_tenant }),
        ...(data.native_relay === false && { nativeRelay: false as const }),
      },
      ...(tenants && { tenants }),
      log: { level: raw.log?.level ?? "info", format: raw.log?.format ?? "json" },
      metrics: { enabled: raw.metrics?.enabled ?? true },
      events: {
        history: raw.events?.history ?? 10_000,
        watchBuffer: raw.events?.watch_buffer ?? 1_024,
      },
      ...(cluster && { cluster }),
    },
  };
}

/**
 * The cluster section: exactly one Redis source, the secret present, and an advertise address
 * for each plane (by default its listen address, which must then name one reachable host).
 */
function buildCluster(
  raw: RawCluster,
  listens: { control: ListenAddress; data: ListenAddress },
  env: Readonly<Record<string, string | undefined>>,
  issues: PathIssue[],
): ClusterConfig | undefined {
  const before = issues.length;
  let redisUrl = raw.redis;
  if (raw.redis !== undefined && raw.redis_env !== undefined) {
    issues.push({ path: ["cluster", "redis_env"], message: "set redis or redis_env, not both" });
  } else if (raw.redis_env !== undefined) {
    redisUrl = env[raw.redis_env] || undefined;
    if (redisUrl === undefined) {
      issues.push({
        path: ["cluster", "redis_env"],
        message: `environment variable ${raw.redis_env} is not set (or empty)`,
      });
    } else if (!/^rediss?:\/\/\S+$/.test(redisUrl)) {
      issues.push({
        path: ["cluster", "redis_env"],
        message: `${raw.redis_env} must hold a Redis URL like "redis://host:6379/0"`,
      });
    }
  } else if (redisUrl === undefined) {
    issues.push({
      path: ["cluster"],
      at: "key",
      message: "set cluster.redis (a URL) or cluster.redis_env (a variable holding one)",
    });
  }
  const secret = env[raw.secret_env] || undefined;
  if (secret === undefined) {
    issues.push({
      path: ["cluster", "secret_env"],
      message: `environment variable ${raw.secret_env} is not set (or empty)`,
    });
  } else if (secret.length < 16) {
    issues.push({
      path: ["cluster", "secret_env"],
      message: `${raw.secret_env} must hold at least 16 characters (it authenticates node-to-node calls)`,
    });
  }
  const advertise = { data: "", control: "" };
  for (const plane of ["data", "control"] as const) {
    const given = raw.advertise?.[plane];
    const addr = given ?? listens[plane];
    if (addr.port === 0 || addr.host === "0.0.0.0" || addr.host === "::" || addr.host === "") {
      issues.push({
        path: given ? ["cluster", "advertise", plane] : ["cluster"],
        ...(given === undefined && { at: "key" as const }),
        message: `other nodes cannot reach ${formatHostPort(addr.host, addr.port)}: set cluster.advertise.${plane} to this node's reachable host:port`,
      });
    }
    advertise[plane] = formatHostPort(addr.host, addr.port);
  }
  if (issues.length > before || redisUrl === undefined || secret === undefined) return undefined;
  return {
    redisUrl,
    node: raw.node ?? `${hostname()}-${process.pid}`,
    advertise,
    leaseMs: raw.lease ?? CONFIG_DEFAULTS.clusterLeaseMs,
    secret,
    ...(raw.hop !== undefined && { hop: raw.hop }),
  };
}

/** A listen address of CONFIG_DEFAULTS, through the one parser. */
function parseDefault(hostPort: string): ListenAddress {
  const address = parseListenAddress(hostPort);
  if ("error" in address) throw new Error(`CONFIG_DEFAULTS: ${address.error}`);
  return address;
}

function buildPool(
  name: string,
  raw: RawPool,
  baseDir: string,
  issues: PathIssue[],
): PoolOptions | undefined {
  const at = (key: string) => ["workers", name, key];
  const cwd = resolve(baseDir, raw.cwd ?? ".");
  if (raw.cwd !== undefined && !isDirectory(cwd)) {
    issues.push({ path: at("cwd"), message: `${cwd} is not a directory` });
  }
  let ready: ReadyCheck | undefined;
  const r = raw.ready;
  if (r === "tcp" || (typeof r === "object" && "tcp" in r)) ready = { kind: "tcp" };
  else if (r === "http") ready = { kind: "http", path: raw.health_path ?? "/" };
  else if (typeof r === "object" && "http" in r) ready = { kind: "http", path: r.http };
  else if (typeof r === "object" && "stdout" in r) ready = { kind: "stdout", pattern: r.stdout };

  const max = raw.max ?? 10;
  if (raw.min !== undefined && raw.min > max) {
    issues.push(
      raw.max === undefined
        ? { path: at("min"), message: `min (${raw.min}) exceeds the default max (${max}): set max` }
        : { path: at("max"), message: `max (${raw.max}) must be ≥ min (${raw.min})` },
    );
    return undefined;
  }
  // The demand policy's own keys mean nothing without it: say so rather than ignore them.
  for (const key of ["max_idle", "warm_window"] as const) {
    if (raw[key] !== undefined && raw.warm !== "auto") {
      issues.push({ path: at(key), message: `${key} applies only to warm: auto` });
    }
  }
  if (raw.idle_cpu !== undefined && raw.ttl === 0) {
    issues.push({
      path: at("idle_cpu"),
      message: "idle_cpu needs a ttl (ttl is 0: sessions never idle out)",
    });
  }
  if (raw.max_idle !== undefined && raw.max_idle > max) {
    issues.push({
      path: at("max_idle"),
      message: `max_idle (${raw.max_idle}) exceeds max (${max})`,
    });
  }
  try {
    return resolvePoolOptions({
      name,
      command: raw.cmd,
      cwd,
      env: raw.env,
      envPassthrough: raw.env_passthrough,
      min: raw.min,
      max: raw.max,
      idleTtlMs: raw.ttl,
      reuse: raw.reuse,
      ready,
      healthPath: raw.health_path,
      healthIntervalMs: raw.health_interval,
      healthFailures: raw.health_failures,
      startTimeoutMs: raw.start_timeout,
      maxLifetimeMs: raw.max_lifetime,
      heartbeatGraceMs: raw.heartbeat_grace,
      dataTimeoutMs: raw.data_timeout,
      killOnDataTimeout: raw.kill_on_data_timeout,
      releaseOnDisconnect: raw.release_on_disconnect,
      disconnectGraceMs: raw.disconnect_grace,
      preemptIdleMs: raw.preempt_idle,
      acquireTimeoutMs: raw.acquire_timeout,
      queueLimit: raw.queue_limit,
      logBufferBytes: raw.log_buffer,
      limits: raw.limits && {
        memoryBytes: raw.limits.memory,
        cpus: raw.limits.cpus,
        pids: raw.limits.pids,
      },
      isolation: buildIsolation(raw.isolation ?? {}),
      stopGraceMs: raw.stop_grace,
      idleWorkerTtlMs: raw.idle_worker_ttl,
      restartBackoffMs: raw.restart_backoff,
      restartBackoffMaxMs: raw.restart_backoff_max,
      restartStableMs: raw.restart_stable,
      warm: raw.warm,
      warmWindowMs: raw.warm_window,
      maxIdle: raw.max_idle,
      idleCpu: raw.idle_cpu,
    });
  } catch (err) {
    // The schema mirrors the pool's own checks; this catches any it adds later.
    if (!isHerdError(err)) throw err;
    issues.push({ path: ["workers", name], at: "key", message: err.message });
    return undefined;
  }
}

/** A worker command that cannot start is reported here rather than as a crash loop later. */
function buildIsolation(raw: NonNullable<RawPool["isolation"]>): Partial<IsolationOptions> {
  // `none`: the explicit opt-out of containment (the process tree stays the worker's own).
  if (raw === "none") return { user: "inherit", network: "host", filesystem: "host" };
  const user = raw.user;
  const range = raw.uid_range?.split("-").map(Number) as [number, number] | undefined;
  return {
    pidNamespace: raw.pid_namespace,
    user:
      user === undefined || user === "inherit" || user === "auto"
        ? user
        : typeof user === "number" || /^\d+$/.test(user)
          ? { uid: Number(user) }
          : { name: user },
    uidRange: range,
    // Unset: the best this host gives (src/sandbox: egress, else private, else host).
    network: raw.network ?? "auto",
    egress: { allow: raw.egress?.allow ?? [], deny: raw.egress?.deny ?? [] },
    filesystem: raw.filesystem,
  };
}

function checkProgram(
  pool: PoolOptions,
  env: Readonly<Record<string, string | undefined>>,
  issues: PathIssue[],
): void {
  const program = pool.command[0]!;
  if (program.includes("{{")) return;
  const path = ["workers", pool.name, "cmd", 0];
  if (program.includes("/")) {
    const full = isAbsolute(program) ? program : resolve(pool.cwd ?? ".", program);
    if (!isExecutable(full)) {
      issues.push({ path, message: `${full} does not exist or is not executable` });
    }
    return;
  }
  const searchPath = pool.env.PATH ?? env.PATH ?? "";
  const found = searchPath
    .split(delimiter)
    .filter(Boolean)
    .some((dir) => isExecutable(join(dir, program)));
  if (!found) {
    issues.push({
      path,
      message: `command ${JSON.stringify(program)} not found on PATH: install it or give its full path`,
    });
  }
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

function isDirectory(dir: string): boolean {
  try {
    return statSync(dir).isDirectory();
  } catch {
    return false;
  }
}
