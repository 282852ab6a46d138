// Who is calling, and what the planes ask of the tenants (DESIGN.md, "Tenants"). The shapes
// only: src/tenants implements `Tenancy`; the control plane and the data plane receive one
// from whoever wires the daemon (without a `tenants` section, none: every key-holder is the
// operator, as before).

import { HerdError } from "./errors.ts";
import type { AcquireOptions, SessionInfo } from "./types.ts";

/** The caller of a plane: the operator (control.token) or one tenant (its key). */
export type Caller =
  | { readonly kind: "operator" }
  | { readonly kind: "tenant"; readonly name: string };

export const OPERATOR: Caller = Object.freeze({ kind: "operator" });

/** A tenant key shorter than this is refused at start: it must not be guessable. */
export const MIN_TENANT_KEY_LENGTH = 32;

/** One tenant as configured, every default filled. */
export interface TenantOptions {
  name: string;
  /** Its API key (from key_env or key_file). */
  key: string;
  /** The pools it may use, in configuration order (default: every pool). */
  pools: readonly string[];
  /** Concurrent sessions at most (0: unlimited). */
  maxSessions: number;
  /** New sessions per `perMs`, with a burst of `count` (unset: unlimited). */
  acquireRate?: { count: number; perMs: number };
  /** Its share of a full pool's queue (≥ 1). */
  weight: number;
}

/**
 * Where a cluster keeps each tenant's acquire_rate bucket, so that every node takes from the
 * same one (src/cluster, Redis). Without it each node keeps its own.
 */
export interface SharedRates {
  /** Takes a token from `tenant`'s bucket of `count` per `perMs`: 0, or the ms until there is one. */
  take(tenant: string, count: number, perMs: number): Promise<number>;
}

/**
 * Where a cluster counts each tenant's sessions against its max_sessions, so that admitting a
 * new one is one atomic step on every node at once (src/cluster, Redis). Without it each node
 * counts what it knows.
 */
export interface SharedMaxSessions {
  /**
   * Claims `sessionId` for `tenant` unless the tenant holds `max` claims already: the hold, or
   * undefined at max. An id some acquire already claimed is shared, never counted twice.
   * Throws unavailable (naming Redis) when the claims cannot be reached.
   */
  claim(tenant: string, sessionId: string, max: number): Promise<MaxSessionsHold | undefined>;
}

/** One acquire's share of its session's claim, settled once, when the acquire is over. */
export interface MaxSessionsHold {
  /**
   * `started` (the session is the tenant's) or `failed`: the claim stays while some node runs
   * the session (that node keeps it), else it goes. `foreign`: the id is another tenant's
   * session: the claim goes. Resolves once done (or given up: the claim then expires on its
   * own); never rejects.
   */
  settle(outcome: "started" | "failed" | "foreign"): Promise<void>;
}

/** One tenant's use of its quota (GetStats' TenantStats). */
export interface TenantUsage {
  name: string;
  sessions: number;
  maxSessions: number;
  /** New sessions per second (0: unlimited). */
  acquireRate: number;
  weight: number;
  /** Its acquires waiting in this node's pools' queues. */
  queued: number;
  pools: readonly string[];
}

/** What both planes ask of the tenants. */
export interface Tenancy {
  /**
   * Whose key this is: control.token's holder (the operator), a tenant, or nobody (undefined).
   * The time it takes does not depend on how much of a key a guess gets right.
   */
  identify(key: string): Caller | undefined;
  /** data.anonymous_tenant: the tenant of a data-plane auto-acquire without a key, if any. */
  readonly anonymousTenant: string | undefined;
  /**
   * `directory.acquire` on a tenant's behalf: only in its pools (else permission_denied), a
   * live session only if it is the tenant's own (another's is not_found), a new one only
   * within its max_sessions and acquire_rate (else quota_exceeded, naming the limit).
   */
  acquire(
    tenant: string,
    pool: string,
    sessionId: string | undefined,
    opts: AcquireOptions,
  ): Promise<SessionInfo>;
  /** The pools `tenant` may use. */
  pools(tenant: string): readonly string[];
  /** Each tenant's row, or only `tenant`'s. */
  usage(tenant?: string): TenantUsage[];
}

/** Does `caller` see `session`? The operator sees every session, a tenant its own. */
export function sees(caller: Caller, session: Pick<SessionInfo, "tenant">): boolean {
  return caller.kind === "operator" || session.tenant === caller.name;
}

/** What a caller hears of a session it does not see: what it would hear of an unknown one. */
export function notYours(sessionId: string): HerdError {
  return new HerdError("not_found", `no live session ${JSON.stringify(sessionId)}`);
}
