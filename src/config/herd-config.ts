// The daemon's configuration after loading: every default filled, every value checked.

import type { PoolOptions } from "../pool/types.ts";

export type LogLevel = "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";

/** "auto": tokens are required exactly when the data plane binds a non-loopback address. */
export type TokenMode = "auto" | "required" | "off";

export interface HerdConfig {
  /** Absolute path of the file this came from. */
  file: string;
  pools: PoolOptions[];
  defaultPool: string;
  control: {
    /** host:port */
    listen: string;
    socket?: string;
    /** Bearer token the control plane demands (from `token` or the `token_env` variable). */
    token?: string;
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
  };
  log: { level: LogLevel; format: "json" | "pretty" };
  metrics: { enabled: boolean };
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
}

export const CONFIG_DEFAULTS = {
  controlListen: "127.0.0.1:7070",
  dataListen: "127.0.0.1:8080",
  sessionHeader: "X-Session-ID",
  clusterLeaseMs: 5_000,
} as const;
