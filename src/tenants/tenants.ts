// The tenants of one daemon (DESIGN.md, "Tenants"): whose key a key is, and what a tenant may
// acquire — its own sessions, in its own pools, within its max_sessions and acquire_rate.
//
// Invariant: a tenant's new-session acquires in flight plus its live sessions never exceed its
// max_sessions at the moment one is admitted (admission and counting are one synchronous step;
// each admitted acquire's id is fixed up front, so it counts once whether in flight, live, or
// both in the moment between its session's start and its acquire's settling). In a cluster the
// count is the cluster's, kept in Redis (SharedMaxSessions: one atomic claim per session id,
// held from admission until the session ends; src/cluster/redis-quota.ts). A session handed
// to a tenant is that tenant's: an acquire that joins another caller's acquire of the same new
// id (the pool's singleflight) is refused after the fact.
// Concurrency: single-threaded; the state is the in-flight ids and the local rate buckets. The
// waits before the pool are a cluster's claim and shared rate bucket (Redis); the acquire counts
// as in flight during them, and its claim is settled exactly once, however it ends.

import type {
  AcquireOptions,
  Caller,
  MaxSessionsHold,
  SessionDirectory,
  SessionInfo,
  SharedMaxSessions,
  SharedRates,
  Tenancy,
  TenantOptions,
  TenantUsage,
} from "../core/index.ts";
import { HerdError, newSessionId, notYours, OPERATOR } from "../core/index.ts";
import { AcquireRate } from "./acquire-rate.ts";
import { KeyIndex } from "./key-index.ts";

interface Tenant {
  options: TenantOptions;
  rate: AcquireRate | undefined;
  /** Ids of the new sessions admitted whose acquire has not settled yet. */
  inFlight: Set<string>;
}

export interface TenantsOptions {
  tenants: readonly TenantOptions[];
  /** control.token: the operator's key. */
  operatorToken: string;
  /** data.anonymous_tenant */
  anonymousTenant?: string;
  /** In a cluster: the acquire_rate buckets every node shares. */
  rates?: SharedRates;
  /** In a cluster: the max_sessions claims every node counts. */
  maxSessions?: SharedMaxSessions;
}

function rateText(rate: AcquireRate): string {
  return rate.perMs === 60_000 ? `${rate.count}/m` : `${rate.count}/s`;
}

export class Tenants implements Tenancy {
  readonly anonymousTenant: string | undefined;
  readonly #byName = new Map<string, Tenant>();
  readonly #keys: KeyIndex;
  readonly #rates: SharedRates | undefined;
  readonly #shared: SharedMaxSessions | undefined;

  constructor(
    private readonly directory: SessionDirectory,
    opts: TenantsOptions,
  ) {
    for (const options of opts.tenants) {
      const r = options.acquireRate;
      this.#byName.set(options.name, {
        options,
        rate: r && new AcquireRate(r.count, r.perMs),
        inFlight: new Set(),
      });
    }
    this.#keys = new KeyIndex([
      [opts.operatorToken, OPERATOR],
      ...opts.tenants.map((t): [string, Caller] => [
        t.key,
        Object.freeze({ kind: "tenant", name: t.name }),
      ]),
    ]);
    this.anonymousTenant = opts.anonymousTenant;
    this.#rates = opts.rates;
    this.#shared = opts.maxSessions;
  }

  identify(key: string): Caller | undefined {
    return this.#keys.identify(key);
  }

  pools(name: string): readonly string[] {
    return this.#byName.get(name)?.options.pools ?? [];
  }

  async acquire(
    name: string,
    pool: string,
    sessionId: string | undefined,
    opts: AcquireOptions,
  ): Promise<SessionInfo> {
    const tenant = this.#byName.get(name);
    if (tenant === undefined) throw new HerdError("internal", `no tenant ${JSON.stringify(name)}`);
    const live = sessionId === undefined ? undefined : this.directory.lookup(sessionId);
    if (live !== undefined && live.tenant !== name) throw notYours(live.id);
    this.directory.poolOptions(pool); // an unknown pool: not_found
    const { options } = tenant;
    if (!options.pools.includes(pool)) {
      throw new HerdError(
        "permission_denied",
        `tenant ${name} may not use pool ${JSON.stringify(pool)} (its pools: ${options.pools.join(", ")})`,
      );
    }
    const withTenant = { ...opts, tenant: name };
    if (live !== undefined)
      return this.#own(name, await this.directory.acquire(pool, live.id, withTenant));
    // The id is fixed here so that an admitted acquire counts once, in flight or live.
    const id = sessionId ?? newSessionId();
    let claim: MaxSessionsHold | undefined;
    if (this.#shared && options.maxSessions > 0)
      claim = await this.#claim(tenant, id, this.#shared);
    // Alone, counting and taking the place are one synchronous step (no await between them).
    else this.#admitSessions(tenant);
    tenant.inFlight.add(id);
    let outcome: "started" | "failed" | "foreign" = "failed";
    try {
      if (tenant.rate !== undefined) {
        const { count, perMs } = tenant.rate;
        const waitMs = this.#rates
          ? await this.#rates.take(name, count, perMs)
          : tenant.rate.take();
        if (waitMs > 0) throw overRate(name, tenant.rate, waitMs);
      }
      const session = await this.directory.acquire(pool, id, withTenant);
      outcome = session.tenant === name ? "started" : "foreign";
      return this.#own(name, session);
    } finally {
      tenant.inFlight.delete(id);
      // A failed acquire answers once its claim is back (a retry finds the room); a started
      // one does not wait for the bookkeeping.
      const settled = claim?.settle(outcome);
      if (outcome !== "started") await settled;
    }
  }

  usage(only?: string): TenantUsage[] {
    const live = new Map<string, number>();
    for (const s of this.directory.sessions()) {
      if (s.tenant !== undefined) live.set(s.tenant, (live.get(s.tenant) ?? 0) + 1);
    }
    const queued = new Map<string, number>();
    for (const pool of this.directory.stats().pools) {
      for (const [tenant, n] of Object.entries(pool.queuedByTenant ?? {})) {
        queued.set(tenant, (queued.get(tenant) ?? 0) + n);
      }
    }
    const rows: TenantUsage[] = [];
    for (const { options, rate } of this.#byName.values()) {
      if (only !== undefined && options.name !== only) continue;
      rows.push({
        name: options.name,
        sessions: live.get(options.name) ?? 0,
        maxSessions: options.maxSessions,
        acquireRate: rate?.perSecond ?? 0,
        weight: options.weight,
        queued: queued.get(options.name) ?? 0,
        pools: options.pools,
      });
    }
    return rows;
  }

  /** Refuses a new session over the tenant's max_sessions (before its rate: no token taken). */
  #admitSessions(tenant: Tenant): void {
    const { name, maxSessions } = tenant.options;
    if (maxSessions > 0) {
      let held = tenant.inFlight.size;
      for (const s of this.directory.sessions()) {
        if (s.tenant === name && !tenant.inFlight.has(s.id)) held++;
      }
      if (held >= maxSessions) throw atMax(tenant.options);
    }
  }

  /** In a cluster: the id's claim on the tenant's max_sessions, which the acquire settles. */
  async #claim(tenant: Tenant, id: string, shared: SharedMaxSessions): Promise<MaxSessionsHold> {
    const claim = await shared.claim(tenant.options.name, id, tenant.options.maxSessions);
    if (claim === undefined) throw atMax(tenant.options);
    return claim;
  }

  /** The session, if it is the tenant's (a concurrent acquire of one new id may hand over another's). */
  #own(name: string, session: SessionInfo): SessionInfo {
    if (session.tenant !== name) throw notYours(session.id);
    return session;
  }
}

function atMax({ name, maxSessions }: TenantOptions): HerdError {
  return new HerdError(
    "quota_exceeded",
    `tenant ${name} is at its max_sessions (${maxSessions}): release one of its sessions first`,
    { retryAfterSeconds: 1 },
  );
}

function overRate(name: string, rate: AcquireRate, waitMs: number): HerdError {
  return new HerdError(
    "quota_exceeded",
    `tenant ${name} is over its acquire_rate (${rateText(rate)}): retry in ${(waitMs / 1000).toFixed(2)}s`,
    { retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)) },
  );
}

/**
 * What each configured tenant weighs in a full pool's queue (1 for a name not configured): the
 * pool's HerdOptions.tenantWeight, known before the Herd (and so the Tenants) exists.
 */
export function tenantWeights(tenants: readonly TenantOptions[]): (name: string) => number {
  const weights = new Map(tenants.map((t) => [t.name, t.weight]));
  return (name) => weights.get(name) ?? 1;
}
