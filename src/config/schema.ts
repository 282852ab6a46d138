// The shape of herd.yaml as zod schemas: snake_case keys exactly as users write them, strict
// objects (unknown keys are errors), leaf values already converted (durations → ms, sizes →
// bytes, cmd → argv). Checks that span several keys live in build-config.ts.

import * as z from "zod";
import { NAME_PATTERN, parseListenAddress } from "../core/index.ts";
import { hostPatternError, sessionHostError } from "../edge/index.ts";
import { MAX_EVENT_HISTORY, MAX_QUEUE_LIMIT, MAX_WATCH_BUFFER } from "../pool/index.ts";
import { parseCidr } from "../sandbox/index.ts";
import { parseByteSize, SIZE_HINT } from "./byte-size.ts";
import { DURATION_HINT, parseDuration } from "./duration.ts";
import { tenantsSchema } from "./tenants-config.ts";

const duration = z
  .union([z.number(), z.string()], { error: `expected a duration (${DURATION_HINT})` })
  .transform((value, ctx) => {
    const r = parseDuration(value);
    if ("error" in r) {
      ctx.addIssue({ code: "custom", message: r.error });
      return z.NEVER;
    }
    return r.ms;
  });

const byteSize = z
  .union([z.number(), z.string()], { error: `expected a size (${SIZE_HINT})` })
  .transform((value, ctx) => {
    const r = parseByteSize(value);
    if ("error" in r) {
      ctx.addIssue({ code: "custom", message: r.error });
      return z.NEVER;
    }
    return r.bytes;
  });

const listen = z.string().transform((value, ctx) => {
  const r = parseListenAddress(value);
  if ("error" in r) {
    ctx.addIssue({ code: "custom", message: r.error });
    return z.NEVER;
  }
  return r;
});

const hostPattern = z.string().superRefine((value, ctx) => {
  const error = hostPatternError(value);
  if (error !== undefined) ctx.addIssue({ code: "custom", message: error });
});
const allowedHosts = z.array(hostPattern, { error: "expected a list of host names" });

const sessionHost = z.string().superRefine((value, ctx) => {
  const error = sessionHostError(value);
  if (error !== undefined) ctx.addIssue({ code: "custom", message: error });
});

const httpPath = z.string().regex(/^\/\S*$/, { error: 'expected a URL path starting with "/"' });

const regex = z.string().superRefine((value, ctx) => {
  try {
    new RegExp(value);
  } catch (err) {
    ctx.addIssue({
      code: "custom",
      message: `not a valid regular expression: ${(err as Error).message}`,
    });
  }
});

const envName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: "expected an environment variable name" });

/** YAML writes `port: 8080` as a number; the environment only has strings. */
const envValue = z
  .union([z.string(), z.number(), z.boolean()], {
    error: "expected a string, number or boolean",
  })
  .transform(String);

const command = z
  .union(
    [
      z.string().regex(/\S/, { error: "must not be empty" }),
      z
        .array(z.union([z.string(), z.number()], { error: "expected a string" }).transform(String))
        .min(1, { error: "must not be empty" })
        .refine((argv) => argv.length === 0 || argv[0]!.trim() !== "", {
          error: "the program (first element) must not be empty",
        }),
    ],
    {
      error:
        'expected a command: a list like ["node", "worker.mjs"], or one string run by /bin/sh -c',
    },
  )
  .transform((cmd) => (typeof cmd === "string" ? ["/bin/sh", "-c", cmd] : cmd));

const ready = z.union(
  [
    z.enum(["tcp", "http"]),
    z.strictObject({ http: httpPath }),
    z.strictObject({ stdout: regex }),
    z.strictObject({ tcp: z.literal(true) }),
  ],
  { error: 'expected "tcp", "http", {http: "/path"} or {stdout: "regex"}' },
);

const NODE_NAME_HINT = "a node name is 1-63 of A-Z a-z 0-9 . _ - (starting with a letter or digit)";

/** An `isolation.egress` range: "203.0.113.0/24", "2001:db8::/32" or one address. */
const cidr = z.string().superRefine((value, ctx) => {
  const parsed = parseCidr(value);
  if (typeof parsed === "string") ctx.addIssue({ code: "custom", message: parsed });
});

export const poolSchema = z.strictObject({
  cmd: command,
  env: z.record(envName, envValue).optional(),
  env_passthrough: z.array(envName).optional(),
  cwd: z.string().min(1, { error: "must not be empty" }).optional(),
  min: z.int().min(0).optional(),
  max: z.int().min(1).optional(),
  ttl: duration.optional(),
  reuse: z.boolean().optional(),
  health_path: httpPath.optional(),
  health_interval: duration.optional(),
  health_failures: z.int().min(1).optional(),
  start_timeout: duration.refine((ms) => ms >= 1, { error: "must be at least 1ms" }).optional(),
  ready: ready.optional(),
  max_lifetime: duration.optional(),
  heartbeat_grace: duration.optional(),
  data_timeout: duration.optional(),
  kill_on_data_timeout: z.boolean().optional(),
  release_on_disconnect: z
    .union([z.boolean(), z.literal("auto")], { error: "expected true, false or auto" })
    .optional(),
  disconnect_grace: duration.optional(),
  preempt_idle: duration.optional(),
  acquire_timeout: duration.optional(),
  queue_limit: z.int().min(0).max(MAX_QUEUE_LIMIT).optional(),
  log_buffer: byteSize
    .refine((bytes) => bytes >= 4_096, { error: "must be at least 4Ki" })
    .optional(),
  limits: z
    .strictObject({
      memory: byteSize
        .refine((bytes) => bytes >= 1 << 20, { error: "must be at least 1Mi" })
        .optional(),
      cpus: z.number().positive().max(1024).optional(),
      pids: z.int().min(1).optional(),
    })
    .optional(),
  isolation: z
    .union([
      z.literal("none"),
      z
        .strictObject({
          pid_namespace: z.boolean().optional(),
          user: z
            .union([
              z.int().min(0),
              z.string().regex(/^[a-z_][a-z0-9_.-]*\$?$/i, {
                error: "must be inherit, auto, a user name or a uid",
              }),
            ])
            .optional(),
          uid_range: z
            .string()
            .regex(/^\d+-\d+$/, { error: 'must be "FIRST-LAST", e.g. "200000-265535"' })
            .optional(),
          network: z.enum(["egress", "private", "host"]).optional(),
          egress: z
            .strictObject({ allow: z.array(cidr).optional(), deny: z.array(cidr).optional() })
            .optional(),
          filesystem: z.enum(["host", "private"]).optional(),
        })
        .refine(
          (i) => i.egress === undefined || i.network === undefined || i.network === "egress",
          {
            error: "allow/deny apply only to network: egress (or network left unset)",
            path: ["egress"],
          },
        ),
    ])
    .optional(),
  stop_grace: duration.optional(),
  idle_worker_ttl: duration.optional(),
  restart_backoff: duration.optional(),
  restart_backoff_max: duration.optional(),
  restart_stable: duration.optional(),
  warm: z.enum(["off", "auto"], { error: "expected auto or off" }).optional(),
  warm_window: duration.refine((ms) => ms >= 100, { error: "must be at least 100ms" }).optional(),
  max_idle: z.int().min(0).optional(),
  idle_cpu: z
    .number()
    .positive({ error: "must be > 0: a share of one CPU, e.g. 0.05 for 5 %" })
    .max(1024)
    .optional(),
});

/** An empty section (`control:` with everything commented out) is YAML null: treat as {}. */
function section<T extends z.ZodType>(schema: T) {
  return schema.nullish().transform((v) => v ?? undefined);
}

export const configSchema = z.strictObject({
  workers: z
    .record(
      z.string().regex(NAME_PATTERN, {
        error: "a pool name is 1-63 of A-Z a-z 0-9 . _ - (starting with a letter or digit)",
      }),
      poolSchema,
    )
    .refine((pools) => Object.keys(pools).length > 0, {
      error: "define at least one pool",
    }),
  control: section(
    z.strictObject({
      listen: listen.optional(),
      socket: z.string().min(1, { error: "must not be empty" }).optional(),
      token: z.string().min(1, { error: "must not be empty" }).optional(),
      token_env: envName.optional(),
      header_timeout: duration.optional(),
      idle_timeout: duration.optional(),
      max_connections: z.int().min(0).optional(),
      max_connections_per_client: z.int().min(0).optional(),
      max_streams_per_connection: z
        .int()
        .min(1)
        .max(2 ** 32 - 1)
        .optional(),
      max_watchers_per_caller: z.int().min(0).optional(),
      max_holds_per_caller: z.int().min(0).optional(),
      allowed_hosts: allowedHosts.optional(),
    }),
  ),
  data: section(
    z.strictObject({
      listen: listen.optional(),
      session_header: z
        .string()
        .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, { error: "expected an HTTP header name" })
        .optional(),
      auto_acquire: z.boolean().optional(),
      tokens: z.enum(["auto", "required", "off"]).optional(),
      header_timeout: duration.optional(),
      max_header_size: byteSize.optional(),
      body_timeout: duration.optional(),
      body_min_rate: byteSize.optional(),
      max_connections: z.int().min(0).optional(),
      max_connections_per_client: z.int().min(0).optional(),
      allowed_hosts: allowedHosts.optional(),
      session_host: sessionHost.optional(),
      anonymous_tenant: z.string().optional(),
      native_relay: z.boolean().optional(),
    }),
  ),
  default_pool: z.string().optional(),
  tenants: tenantsSchema,
  drain_timeout: duration
    .refine((ms) => ms <= 86_400_000, { error: "must be at most 24h" })
    .optional(),
  log: section(
    z.strictObject({
      level: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).optional(),
      format: z.enum(["json", "pretty"]).optional(),
    }),
  ),
  metrics: section(z.strictObject({ enabled: z.boolean().optional() })),
  events: section(
    z.strictObject({
      history: z.int().min(0).max(MAX_EVENT_HISTORY).optional(),
      watch_buffer: z.int().min(1).max(MAX_WATCH_BUFFER).optional(),
    }),
  ),
  cluster: section(
    z.strictObject({
      redis: z
        .string()
        .regex(/^rediss?:\/\/\S+$/, { error: 'expected a Redis URL like "redis://host:6379/0"' })
        .optional(),
      redis_env: envName.optional(),
      node: z.string().regex(NAME_PATTERN, { error: NODE_NAME_HINT }).optional(),
      advertise: z
        .strictObject({ data: listen.optional(), control: listen.optional() })
        .nullish()
        .transform((v) => v ?? undefined),
      lease: duration
        .refine((ms) => ms >= 500 && ms <= 3_600_000, { error: "must be between 500ms and 1h" })
        .optional(),
      secret_env: envName,
      hop: z.enum(["relay", "forward"], { error: "expected relay or forward" }).optional(),
    }),
  ),
});

export type RawConfig = z.output<typeof configSchema>;
export type RawPool = z.output<typeof poolSchema>;
export type RawCluster = NonNullable<RawConfig["cluster"]>;
