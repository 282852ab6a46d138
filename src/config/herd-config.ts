// The daemon's configuration after loading: every default filled, every value checked.

import type { PoolOptions, TenantOptions } from "../core/index.ts";

export type LogLevel = "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";

/** "auto": tokens are required exactly when the data plane binds a non-loopback address. */
export type TokenMode = "auto" | "required" | "off";

export interface HerdConfig {
  /** Absolute path of the file this came from. */
  file: string;
  pools: PoolOptions[];
  defaultPool: string;
  /** SIGTERM and `herd drain`: how long live sessions may run on before the daemon stops. */
  drainTimeoutMs: number;
  control: {
    /** host:port */
    listen: string;
    socket?: string;
    /** Bearer token the control plane demands (from `token` or the `token_env` variable). */
    token?: string;
    headerTimeoutMs: number;
    idleTimeoutMs: number;
    /** Unset: derived from the fd limit (src/limits/fd-budget.ts). */
    maxConnections?: number;
    /** Unset: no per-address cap. */
    maxConnectionsPerClient?: number;
    /** HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS. */
    maxStreamsPerConnection: number;
    /** Open WatchSessions / HoldSession streams of one caller (src/server/caller.ts); 0: no cap. */
    maxWatchersPerCaller: number;
    maxHoldsPerCaller: number;
    /** Host names answered besides IP addresses, localhost and the listen name. */
    allowedHosts?: string[];
  };
  data: {
    /** host:port */
    listen: string;
    sessionHeader: string;
    autoAcquire: boolean;
    tokens: TokenMode;
    /** `tokens` resolved against the listen address. */
    tokensRequired: boolean;
    headerTimeoutMs?: number;
    maxHeaderSize?: number;
    bodyTimeoutMs: number;
    /** Bytes per second. */
    bodyMinRate: number;
    /** Unset: derived from the fd limit (src/limits/fd-budget.ts). */
    maxConnections?: number;
    maxConnectionsPerClient?: number;
    /** Host names answered besides IP addresses, localhost and the listen name. */
    allowedHosts?: string[];
    /** "{id}.sessions.example.com": route by Host. */
    sessionHost?: string;
    /** The tenant of a data-plane auto-acquire that carries no key (tenants only). */
    anonymousTenant?: string;
    /** Set (false) only by `native_relay: false`: tunnels `pipe` even where the relay was built. */
    nativeRelay?: false;
  };
  /** Present only with a `tenants` section (control.token is then set: the operator's key). */
  tenants?: TenantOptions[];
  log: { level: LogLevel; format: "json" | "pretty" };
  metrics: { enabled: boolean };
  /** Bounds of the WatchSessions event stream. */
  events: { history: number; watchBuffer: number };
  /** Present only with a `cluster` section: this node's place in a Redis-backed cluster. */
  cluster?: ClusterConfig;
}

export interface ClusterConfig {
  /** redis:// or rediss:// URL (from `redis` or the `redis_env` variable). */
  redisUrl: string;
  node: string;
  /** host:port other nodes use to reach this node's planes. */
  advertise: { data: string; control: string };
  leaseMs: number;
  /** Shared secret of node-to-node calls (from the `secret_env` variable). */
  secret: string;
  /**
   * How a client connection reaches another node's session (src/dataplane/relay-hop.ts);
   * unset: the data plane's default, relay.
   */
  hop?: "relay" | "forward";
}
