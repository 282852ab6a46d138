// Tenants' max_sessions counted for the whole cluster (core's SharedMaxSessions):
//
//   herd:tq:{tenant}    ZSET of the tenant's claims: session id → expiry (ms on Redis's clock)
//   herd:tqh:{tenant}   HASH session id → how many acquires in flight hold its claim
//
// Invariant: a claim is added for a new id only while the tenant's unexpired claims number
// fewer than its max_sessions (the claim script drops the expired, counts and adds in one
// step, serialised by Redis), so nodes admitting at the same moment never together pass the
// max; an id counts once however many acquires of it hold its claim. A claim lives while
// something renews it: the node of each acquire in flight holding it, and the node running its
// live session, both on every lease tick (start-cluster.ts); each renewal sets it to expire one
// lease (cluster.lease) later. So a dead node's claims are gone at most one lease after its
// last renewal, and a live node's outlive a Redis outage its lease survives (the claims are
// renewed just after the lease, and the node fences a margin before its lease runs out).
//
// A claim goes: with the session's end event (its append runs END_QUOTA_CLAIM, redis-events.ts);
// when its last acquire in flight settles and the id has no session record (herd:s:{id}: the
// acquire failed, or its session ended already; with a record, the node running it keeps the
// claim); when that acquire found another tenant's session. Not while an acquire in flight
// still holds it. A claim none of these give back (a process died mid-acquire, Redis was away
// at the end) expires within a lease.
//
// Trust: whoever can write Redis can add claims or holder counts (the tenant is refused new
// sessions until they expire: denial of service), or delete claims: the tenant may then be
// admitted up to its max again before its nodes' next renewals (within lease/8) put its live
// sessions' claims back, so it may hold up to twice its max until enough of them end. Neither
// redirects traffic (DESIGN.md: writing Redis can deny service, never redirect traffic).
//
// Concurrency: each write is one script. This process's renewal reads the live sessions and
// sends in one synchronous step, on the same connection as the end events' appends, so a
// session's end is never undone by a renewal sent before it.

import type {
  Logger,
  MaxSessionsHold,
  SessionDirectory,
  SharedMaxSessions,
} from "../core/index.ts";
import type { RedisConnection } from "./redis-connection.ts";

const NOW = `
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
`;

// Gives up the tenant's claim of an ended session unless an acquire in flight still holds it.
// Run by the append of the session's end event (redis-events.ts).
export const END_QUOTA_CLAIM = `
local function end_quota_claim(tenant, id)
  local holders = tonumber(redis.call('HGET', 'herd:tqh:' .. tenant, id) or '0')
  if holders <= 0 then redis.call('ZREM', 'herd:tq:' .. tenant, id) end
end
`;

// ARGV: tenant, id, max, ttl. 1: held (added, or shared with the acquires already holding it).
const CLAIM = `${NOW}
local zk, hk = 'herd:tq:' .. ARGV[1], 'herd:tqh:' .. ARGV[1]
local now, ttl = now_ms(), tonumber(ARGV[4])
for _, gone in ipairs(redis.call('ZRANGEBYSCORE', zk, '-inf', now)) do
  redis.call('HDEL', hk, gone)
end
redis.call('ZREMRANGEBYSCORE', zk, '-inf', now)
if not redis.call('ZSCORE', zk, ARGV[2]) and redis.call('ZCARD', zk) >= tonumber(ARGV[3]) then
  return 0
end
redis.call('ZADD', zk, now + ttl, ARGV[2])
redis.call('HINCRBY', hk, ARGV[2], 1)
redis.call('PEXPIRE', zk, ttl)
redis.call('PEXPIRE', hk, ttl)
return 1
`;

// ARGV: tenant, id, outcome (started | failed | foreign). The last holder's settle gives the
// claim up unless the id has a session record (redis-sessions.ts): whether the acquire saw it
// start or not, the node running it keeps the claim (a session that already ended has none).
// 1: the claim went.
const SETTLE = `
local zk, hk, id = 'herd:tq:' .. ARGV[1], 'herd:tqh:' .. ARGV[1], ARGV[2]
if redis.call('HINCRBY', hk, id, -1) > 0 then return 0 end
redis.call('HDEL', hk, id)
if ARGV[3] ~= 'foreign' and redis.call('EXISTS', 'herd:s:' .. id) == 1 then return 0 end
return redis.call('ZREM', zk, id)
`;

// ARGV: ttl, then per tenant: name, n, and n ids. Each claim (re-added if it went: the session
// is live) expires one ttl from now; one ZADD per 500 ids, one PEXPIRE per tenant.
const RENEW = `${NOW}
local now, ttl = now_ms(), tonumber(ARGV[1])
local i = 2
while i <= #ARGV do
  local tenant, n = ARGV[i], tonumber(ARGV[i + 1])
  local zk = 'herd:tq:' .. tenant
  local batch = {}
  for j = i + 2, i + 1 + n do
    batch[#batch + 1] = now + ttl
    batch[#batch + 1] = ARGV[j]
    if #batch >= 1000 then
      redis.call('ZADD', zk, unpack(batch))
      batch = {}
    end
  end
  if #batch > 0 then redis.call('ZADD', zk, unpack(batch)) end
  redis.call('PEXPIRE', zk, ttl)
  redis.call('PEXPIRE', 'herd:tqh:' .. tenant, ttl)
  i = i + 2 + n
end
return 1
`;

export class RedisQuota implements SharedMaxSessions {
  /** The claims this process's acquires in flight hold: tenant → id → how many. */
  readonly #inFlight = new Map<string, Map<string, number>>();

  constructor(
    private readonly redis: RedisConnection,
    /** This node's sessions: the live ones' claims are this node's to renew. */
    private readonly local: Pick<SessionDirectory, "sessions">,
    /** How long a claim lives after its last renewal: the node's lease. */
    private readonly ttlMs: number,
    private readonly logger: Logger,
  ) {}

  async claim(
    tenant: string,
    sessionId: string,
    max: number,
  ): Promise<MaxSessionsHold | undefined> {
    const held = await this.redis.run(
      CLAIM,
      [],
      [tenant, sessionId, String(max), String(this.ttlMs)],
    );
    if (Number(held) !== 1) return undefined;
    this.#count(tenant, sessionId, 1);
    let settled: Promise<void> | undefined;
    return {
      settle: (outcome) => {
        if (settled) return settled;
        this.#count(tenant, sessionId, -1);
        settled = this.redis.run(SETTLE, [], [tenant, sessionId, outcome]).then(
          () => {},
          (err: unknown) =>
            this.logger.debug(
              { err: String(err), tenant, session: sessionId },
              "cluster: a max_sessions claim was not given back (it expires within a lease)",
            ),
        );
        return settled;
      },
    };
  }

  /** Every lease tick: the claims of this node's live sessions and acquires in flight live on. */
  renew(): void {
    const byTenant = new Map<string, Set<string>>();
    const add = (tenant: string, id: string) => {
      let ids = byTenant.get(tenant);
      if (!ids) {
        ids = new Set();
        byTenant.set(tenant, ids);
      }
      ids.add(id);
    };
    for (const [tenant, ids] of this.#inFlight) for (const id of ids.keys()) add(tenant, id);
    for (const s of this.local.sessions()) if (s.tenant !== undefined) add(s.tenant, s.id);
    if (byTenant.size === 0) return;
    const args = [String(this.ttlMs)];
    for (const [tenant, ids] of byTenant) args.push(tenant, String(ids.size), ...ids);
    this.redis
      .run(RENEW, [], args)
      .catch((err: unknown) =>
        this.logger.debug({ err: String(err) }, "cluster: max_sessions claims not renewed"),
      );
  }

  #count(tenant: string, id: string, by: 1 | -1): void {
    let ids = this.#inFlight.get(tenant);
    if (!ids) {
      ids = new Map();
      this.#inFlight.set(tenant, ids);
    }
    const n = (ids.get(id) ?? 0) + by;
    if (n > 0) ids.set(id, n);
    else ids.delete(id);
    if (ids.size === 0) this.#inFlight.delete(tenant);
  }
}
