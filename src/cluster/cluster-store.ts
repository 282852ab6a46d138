// What herd keeps in Redis of its nodes (through redis-connection.ts; the sessions' claims and
// records are redis-sessions.ts's, the event stream redis-events.ts's). Every write that must
// be atomic across nodes is one Lua script, so Redis serialises them:
//
//   herd:epoch          random id of this Redis dataset; a change means Redis lost its data
//   herd:members        SET of node names that joined and were not yet reaped
//   herd:alive:{node}   the node's record (addresses, pool capacity), PX = lease: its liveness
//
// Invariants: reaping a dead node deletes exactly the session keys it still owns.
// Concurrency: scripts are serialised by Redis; the connection, its outages and its
// credentials are redis-connection.ts's.

import { randomBytes } from "node:crypto";
import type { Logger } from "../core/index.ts";
import { RedisConnection } from "./redis-connection.ts";
import { EVENTS, RedisEvents, STREAM_MAXLEN, XADD_EVENT } from "./redis-events.ts";
import { RedisSessions } from "./redis-sessions.ts";

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

export type RenewResult = "ok" | "expired" | "reset";

export class ClusterStore {
  /** The sessions' claims and records. */
  readonly sessions: RedisSessions;
  /** The cluster's event stream. */
  readonly events: RedisEvents;

  private constructor(private readonly redis: RedisConnection) {
    this.sessions = new RedisSessions(redis);
    this.events = new RedisEvents(redis);
  }

  /** Connects to Redis; throws HerdError unavailable naming Redis when it cannot. */
  static async connect(url: string, logger: Logger): Promise<ClusterStore> {
    return new ClusterStore(await RedisConnection.connect(url, logger));
  }

  onReconnect(listener: () => void): void {
    this.redis.onReconnect(listener);
  }

  /** host:port of Redis without credentials, for messages. */
  where(): string {
    return this.redis.where();
  }

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

  /** A clean shutdown: this node and whatever it still owns leave the cluster now. */
  async leave(node: string): Promise<void> {
    await this.redis.run(LEAVE, [], [node]);
  }

  /** Declares nodes whose lease ran out dead; their sessions become node_lost events. */
  async reap(self: string): Promise<number> {
    return Number(await this.redis.run(REAP, [EVENTS], [self, STREAM_MAXLEN]));
  }

  /** Drops both connections at once (a blocked XREAD included). */
  close(): Promise<void> {
    return this.redis.close();
  }
}
