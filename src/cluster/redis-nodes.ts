// The nodes' records and leases in Redis:
//
//   herd:epoch          random id of this Redis dataset; a change means Redis lost its data
//   herd:members        SET of node names that joined and were not yet reaped
//   herd:alive:{node}   the node's record (addresses, pool capacity, signed), PX = lease: its
//                       liveness
//
// Invariants: a node's alive key exists only while its lease runs (set with PX on join and each
// renewal, never renewed once expired: the node must join again, dropping what it owned);
// reaping a dead node deletes exactly the session keys it still owns (herd:owned:{node},
// redis-sessions.ts), each becoming a node_lost entry of the event stream in the same script;
// so does a node joining again (a previous life's sessions), and reconciling after a restart
// whose new process died (the sessions only that process had: `reconcile`).
// Concurrency: each write is one script, serialised by Redis.

import { randomBytes } from "node:crypto";
import type { RedisConnection } from "./redis-connection.ts";
import { EVENTS, STREAM_MAXLEN, XADD_EVENT } from "./redis-events.ts";

const JOIN = `${XADD_EVENT}
redis.call('SET', 'herd:epoch', ARGV[4], 'NX')
local epoch = redis.call('GET', 'herd:epoch')
local stale = {}
local owned = 'herd:owned:' .. ARGV[1]
for _, id in ipairs(redis.call('SMEMBERS', owned)) do
  local sk = 'herd:s:' .. id
  local cur = redis.call('HMGET', sk, 'node', 'pool', 'info')
  if cur[1] == ARGV[1] then
    redis.call('DEL', sk)
    xadd_event(ARGV[5], 0, cjson.encode({type='session_lost',
      node=ARGV[1], pool=cur[2] or '', sessionId=id, reason='node_lost', info=cur[3] or '', time=now_ms()}))
  end
end
redis.call('DEL', owned)
redis.call('SET', 'herd:alive:' .. ARGV[1], ARGV[2], 'PX', ARGV[3])
redis.call('SADD', 'herd:members', ARGV[1])
return epoch
`;

const RENEW = `
if redis.call('GET', 'herd:epoch') ~= ARGV[4] then return 'reset' end
local alive = 'herd:alive:' .. ARGV[1]
if redis.call('EXISTS', alive) == 0 then return 'expired' end
redis.call('SET', alive, ARGV[2], 'PX', ARGV[3])
return 'ok'
`;

const LEAVE = `
local owned = 'herd:owned:' .. ARGV[1]
for _, id in ipairs(redis.call('SMEMBERS', owned)) do
  local sk = 'herd:s:' .. id
  if redis.call('HGET', sk, 'node') == ARGV[1] then redis.call('DEL', sk) end
end
redis.call('DEL', owned, 'herd:alive:' .. ARGV[1])
redis.call('SREM', 'herd:members', ARGV[1])
return 1
`;

const REAP = `${XADD_EVENT}
local lost = 0
for _, n in ipairs(redis.call('SMEMBERS', 'herd:members')) do
  if n ~= ARGV[1] and redis.call('EXISTS', 'herd:alive:' .. n) == 0 then
    local owned = 'herd:owned:' .. n
    for _, id in ipairs(redis.call('SMEMBERS', owned)) do
      local sk = 'herd:s:' .. id
      local cur = redis.call('HMGET', sk, 'node', 'pool', 'info')
      if cur[1] == n then
        redis.call('DEL', sk)
        lost = lost + 1
        xadd_event(ARGV[2], 0, cjson.encode({type='session_lost',
          node=n, pool=cur[2] or '', sessionId=id, reason='node_lost', info=cur[3] or '', time=now_ms()}))
      end
    end
    redis.call('DEL', owned)
    redis.call('SREM', 'herd:members', n)
  end
end
return lost
`;

// The sessions herd:owned:{node} lists that the node does not hold (ARGV[3..]) are a dead
// process's of the same node (a restart's new one, SIGKILLed before it served): lost, as a
// previous life's are when a node joins again.
const RECONCILE = `${XADD_EVENT}
local keep = {}
for i = 3, #ARGV do keep[ARGV[i]] = true end
local owned = 'herd:owned:' .. ARGV[1]
local lost = 0
for _, id in ipairs(redis.call('SMEMBERS', owned)) do
  if not keep[id] then
    local sk = 'herd:s:' .. id
    local cur = redis.call('HMGET', sk, 'node', 'pool', 'info')
    if cur[1] == ARGV[1] then
      redis.call('DEL', sk)
      lost = lost + 1
      xadd_event(ARGV[2], 0, cjson.encode({type='session_lost',
        node=ARGV[1], pool=cur[2] or '', sessionId=id, reason='node_lost', info=cur[3] or '', time=now_ms()}))
    end
    redis.call('SREM', owned, id)
  end
end
return lost
`;

export type RenewResult = "ok" | "expired" | "reset";

export class RedisNodes {
  constructor(private readonly redis: RedisConnection) {}

  /** Registers this node (dropping what a previous life of it owned); returns the epoch. */
  async join(node: string, record: string, leaseMs: number): Promise<string> {
    const epoch = randomBytes(12).toString("base64url");
    return String(
      await this.redis.run(JOIN, [EVENTS], [node, record, String(leaseMs), epoch, STREAM_MAXLEN]),
    );
  }

  async renew(node: string, record: string, leaseMs: number, epoch: string): Promise<RenewResult> {
    return (await this.redis.run(RENEW, [], [node, record, String(leaseMs), epoch])) as RenewResult;
  }

  /** The records of every live node. */
  async nodes(): Promise<string[]> {
    return this.redis.call(async (c) => {
      const names = await c.sMembers("herd:members");
      if (names.length === 0) return [];
      const records = await c.mGet(names.map((n) => `herd:alive:${n}`));
      return records.filter((r): r is string => typeof r === "string");
    });
  }

  /** Drops (as node_lost) what Redis lists as `node`'s beyond `held`; returns how many. */
  async reconcile(node: string, held: string[]): Promise<number> {
    return Number(await this.redis.run(RECONCILE, [EVENTS], [node, STREAM_MAXLEN, ...held]));
  }

  /** A clean shutdown: this node and whatever it still owns leave the cluster now. */
  async leave(node: string): Promise<void> {
    await this.redis.run(LEAVE, [], [node]);
  }

  /** Declares nodes whose lease ran out dead; their sessions become node_lost events. */
  async reap(self: string): Promise<number> {
    return Number(await this.redis.run(REAP, [EVENTS], [self, STREAM_MAXLEN]));
  }
}
