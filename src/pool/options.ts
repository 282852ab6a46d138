// Pool defaults and the last line of validation for pool definitions. The config loader
// reports YAML positions; this module guards programmatic callers and keeps defaults in one place.

import type { IsolationOptions, PoolOptions } from "../core/index.ts";
import { HerdError, NAME_PATTERN } from "../core/index.ts";
import { MAX_TIMER_MS } from "./long-timer.ts";

export type PoolOptionsInput = Pick<PoolOptions, "name" | "command"> &
  Partial<Omit<PoolOptions, "isolation">> & { isolation?: Partial<IsolationOptions> };

/**
 * Contained by default: `default` keys get the strongest the sandbox launcher finds the host
 * supports (without a launcher, as in-process library use, nothing beyond the process tree).
 */
export const DEFAULT_ISOLATION: IsolationOptions = {
  pidNamespace: false,
  user: "default",
  // 65 536 uids above the first subordinate-uid block useradd hands out (100000-165535).
  uidRange: [200_000, 265_535],
  network: "auto",
  egress: { allow: [], deny: [] },
  filesystem: "default",
};

const DURATIONS = [
  "idleTtlMs",
  "healthIntervalMs",
  "maxLifetimeMs",
  "heartbeatGraceMs",
  "dataTimeoutMs",
  "acquireTimeoutMs",
  "stopGraceMs",
  "idleWorkerTtlMs",
  "restartBackoffMs",
  "restartBackoffMaxMs",
  "restartStableMs",
  "disconnectGraceMs",
  "preemptIdleMs",
  "warmWindowMs",
] as const;

/** Node timers cannot hold longer; pool durations become timers (see long-timer.ts). */
export const MAX_DURATION_TEXT = "596h, about 24.8 days: the longest timer Node.js can set";

/** queue_limit's cap: ~5 KiB of daemon heap per queued acquire in the pool engine alone. */
export const MAX_QUEUE_LIMIT = 10_000;

const DEFAULT_MAX = 10;

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function resolvePoolOptions(input: PoolOptionsInput): PoolOptions {
  const healthPath = input.healthPath;
  const options: PoolOptions = {
    env: {},
    envPassthrough: [],
    min: 0,
    max: DEFAULT_MAX,
    idleTtlMs: 10 * 60_000,
    reuse: true,
    ready: healthPath !== undefined ? { kind: "http", path: healthPath } : { kind: "tcp" },
    healthIntervalMs: 5_000,
    healthFailures: 3,
    startTimeoutMs: 30_000,
    maxLifetimeMs: 0,
    heartbeatGraceMs: 15_000,
    dataTimeoutMs: 0,
    killOnDataTimeout: true,
    releaseOnDisconnect: "auto",
    disconnectGraceMs: 2_000,
    preemptIdleMs: 0,
    acquireTimeoutMs: 30_000,
    queueLimit: 1_000,
    limits: {},
    stopGraceMs: 2_000,
    idleWorkerTtlMs: 60_000,
    restartBackoffMs: 1_000,
    restartBackoffMaxMs: 30_000,
    restartStableMs: 10_000,
    logBufferBytes: 256 * 1024,
    warm: "off",
    warmWindowMs: 60_000,
    idleCpu: 0,
    ...stripUndefined(input),
    maxIdle: input.maxIdle ?? input.max ?? DEFAULT_MAX,
    isolation: { ...DEFAULT_ISOLATION, ...stripUndefined(input.isolation ?? {}) },
    name: input.name,
    command: input.command,
  };
  validate(options);
  return options;
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function validate(o: PoolOptions): void {
  const fail = (field: string, message: string): never => {
    throw new HerdError("invalid_argument", `pool ${JSON.stringify(o.name)}: ${field}: ${message}`);
  };
  if (!NAME_PATTERN.test(o.name))
    fail("name", "use 1-63 of A-Z a-z 0-9 . _ - (starting alphanumeric)");
  if (o.command.length === 0 || o.command[0] === "") fail("command", "must name a program");
  const envNames = (field: string, names: readonly string[]) => {
    for (const name of names) {
      if (!ENV_NAME.test(name)) fail(field, `${JSON.stringify(name)} is not a variable name`);
    }
  };
  envNames("env", Object.keys(o.env));
  envNames("envPassthrough", o.envPassthrough);
  const whole = (field: keyof PoolOptions, lowest: number) => {
    const v = o[field];
    if (typeof v !== "number" || !Number.isInteger(v) || v < lowest) {
      fail(field, `must be an integer >= ${lowest}, got ${String(v)}`);
    }
  };
  whole("min", 0);
  whole("max", 1);
  whole("queueLimit", 0);
  if (o.queueLimit > MAX_QUEUE_LIMIT) fail("queueLimit", `must be at most ${MAX_QUEUE_LIMIT}`);
  whole("healthFailures", 1);
  whole("logBufferBytes", 4_096);
  for (const field of DURATIONS) {
    whole(field, 0);
  }
  whole("startTimeoutMs", 1);
  for (const field of [...DURATIONS, "startTimeoutMs"] as const) {
    if (o[field] > MAX_TIMER_MS)
      fail(field, `must be at most ${MAX_TIMER_MS} ms (${MAX_DURATION_TEXT})`);
  }
  if (o.min > o.max) fail("min", `must not exceed max (${o.min} > ${o.max})`);
  whole("maxIdle", 0);
  if (o.warm !== "off" && o.warm !== "auto") fail("warm", `must be off or auto, got ${o.warm}`);
  if (o.warmWindowMs < 100) fail("warmWindowMs", "must be at least 100 ms");
  if (!(o.idleCpu >= 0 && o.idleCpu <= 1024)) fail("idleCpu", "must be between 0 and 1024 CPUs");
  if (o.ready.kind === "stdout") {
    try {
      new RegExp(o.ready.pattern);
    } catch (err) {
      fail("ready.stdout", `not a valid regular expression: ${(err as Error).message}`);
    }
  }
  if (o.healthPath !== undefined && !o.healthPath.startsWith("/"))
    fail("healthPath", "must start with /");
  if (o.ready.kind === "http" && !o.ready.path.startsWith("/"))
    fail("ready.path", "must start with /");
  const { memoryBytes, cpus, pids } = o.limits;
  if (memoryBytes !== undefined && !(Number.isInteger(memoryBytes) && memoryBytes >= 1 << 20)) {
    fail("limits.memory", "must be at least 1 MiB");
  }
  if (cpus !== undefined && !(cpus > 0 && cpus <= 1024)) fail("limits.cpus", "must be > 0");
  if (pids !== undefined && !(Number.isInteger(pids) && pids >= 1))
    fail("limits.pids", "must be >= 1");
  const [first, last] = o.isolation.uidRange;
  if (!(Number.isInteger(first) && Number.isInteger(last) && first >= 1 && first <= last)) {
    fail("isolation.uid_range", `must be FIRST-LAST with 1 <= FIRST <= LAST, got ${first}-${last}`);
  }
  const user = o.isolation.user;
  if (typeof user === "object" && "uid" in user && !(Number.isInteger(user.uid) && user.uid >= 0)) {
    fail("isolation.user", `a uid must be an integer >= 0, got ${user.uid}`);
  }
}
