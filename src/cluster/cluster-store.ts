// What herd keeps in Redis of its nodes and events (through redis-connection.ts; the sessions'
// claims and records are redis-sessions.ts's). Every write that must be atomic across nodes is
// one Lua script, so Redis serialises them:
//
//   herd:epoch          random id of this Redis dataset; a change means Redis lost its data
//   herd:members        SET of node names that joined and were not yet reaped
//   herd:alive:{node}   the node's record (addresses, pool capacity), PX = lease: its liveness
//   herd:rev            the cluster's event revision counter
//   herd:events         STREAM of every node's lifecycle events (field e = JSON), entry id
//                       `<revision>-0`: one cluster-wide order WatchSessions resumes from
//
// Invariants: reaping a dead node deletes exactly the session keys it still owns. Every
// entry of herd:events is added by a script through XADD_EVENT, so revisions are gapless and
// increasing (a gap means entries were trimmed or Redis lost its data).
// Concurrency: scripts are serialised by Redis; the connection, its outages and its
// credentials are redis-connection.ts's.

import { randomBytes } from "node:crypto";
import type { Logger } from "../core/index.ts";
import { RedisConnection } from "./redis-connection.ts";
import { DROP_CLAIM, RedisSessions } from "./redis-sessions.ts";

const EVENTS = "herd:events";
const STREAM_MAXLEN = "10000";

// Appends one event as revision INCR(herd:rev); never at or below the stream's tail or
// `floor` (the caller's newest seen revision), so after Redis lost herd:rev the order still
// moves forward for everyone that watched before.
const XADD_EVENT = `
local function xadd_event(maxlen, floor, entry)
  local rev = redis.call('INCR', 'herd:rev')
  local tail = redis.call('XREVRANGE', 'herd:events', '+', '-', 'COUNT', 1)[1]
  local least = math.max(tonumber(floor) or 0, tail and tonumber(string.match(tail[1], '^%d+')) or 0) + 1
  if rev < least then
    rev = least
    redis.call('SET', 'herd:rev', string.format('%d', rev))
  end
  redis.call('XADD', 'herd:events', 'MAXLEN', '~', maxlen, string.format('%d-0', rev), 'e', entry)
  return rev
end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
`;

// ARGV[4..6] set (node, gen, id): the event ends that claim, dropped with the append.
const APPEND = `${XADD_EVENT}${DROP_CLAIM}
if ARGV[4] ~= '' then drop_claim(ARGV[4], ARGV[5], ARGV[6]) end
return xadd_event(ARGV[1], ARGV[2], ARGV[3])
`;

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

/** One entry of herd:events: a HerdEvent without revision, plus `info` on lost-by-reap. */
export interface StreamEntry {
  /** The cluster-wide revision: the entry id is `<revision>-0`. */
  revision: number;
  json: string;
}

type Entries = [string, string[]][];

function revisionOf(id: string): number {
  return Number(id.slice(0, id.indexOf("-")));
}

function entries(r: Entries | null | undefined): StreamEntry[] {
  return (r ?? []).map(([id, fields]) => ({ revision: revisionOf(id), json: fields[1] ?? "{}" }));
}

export class ClusterStore {
  /** The sessions' claims and records. */
  readonly sessions: RedisSessions;

  private constructor(private readonly redis: RedisConnection) {
    this.sessions = new RedisSessions(redis);
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

  /**
   * Appends `json` to herd:events; returns its revision. `floor`: the newest revision seen.
   * `drop`: the claim this event ends, given up in the same script (as `drop` does).
   */
  async append(
    json: string,
    floor: number,
    drop?: { node: string; gen: string; id: string },
  ): Promise<number> {
    const claim = drop ? [drop.node, drop.gen, drop.id] : ["", "", ""];
    return Number(
      await this.redis.run(APPEND, [EVENTS], [STREAM_MAXLEN, String(floor), json, ...claim]),
    );
  }

  /** The newest revision in herd:events (0 when empty): where a new reader starts. */
  async lastRevision(): Promise<number> {
    const tail = (await this.redis.call((c) =>
      c.sendCommand(["XREVRANGE", EVENTS, "+", "-", "COUNT", "1"]),
    )) as Entries | null;
    return tail?.[0] ? revisionOf(tail[0][0]) : 0;
  }

  /** Entries after revision `after`, waiting up to `blockMs` for the first (the reader's link). */
  async read(after: number, blockMs: number): Promise<StreamEntry[]> {
    const r = (await this.redis.call(
      (c) =>
        c.sendCommand([
          "XREAD",
          "COUNT",
          "512",
          "BLOCK",
          String(blockMs),
          "STREAMS",
          EVENTS,
          `${after}-0`,
        ]),
      true,
    )) as [string, Entries][] | null;
    return entries(r?.[0]?.[1]);
  }

  /** Up to `count` entries with revision in (after, upTo], oldest first (no blocking). */
  async range(after: number, upTo: number, count: number): Promise<StreamEntry[]> {
    const r = (await this.redis.call((c) =>
      c.sendCommand(["XRANGE", EVENTS, `(${after}-0`, `${upTo}-0`, "COUNT", String(count)]),
    )) as Entries | null;
    return entries(r);
  }

  /** Drops both connections at once (a blocked XREAD included). */
  close(): Promise<void> {
    return this.redis.close();
  }
}
