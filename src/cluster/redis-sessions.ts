// The sessions' claims and records in Redis:
//
//   herd:gen            fencing generation counter (INCR per claim)
//   herd:s:{id}         HASH node, gen, pool, state (pending|ready), info (session JSON, signed)
//   herd:owned:{node}   SET of the session ids the node owns
//
// Invariants: a session key exists only while its owner's id is in herd:owned:{owner} (the
// owner's set is what reaping a dead node deletes: redis-nodes.ts); only a node whose alive key
// exists can claim or commit, so a node the cluster declared dead cannot take new ids; a claim
// is given up only at the generation it was taken at, so a later claim of the id is left alone.
// Concurrency: each write is one script, serialised by Redis.

import type { RedisConnection } from "./redis-connection.ts";

// Gives up `node`'s claim of `id` at generation `gen` (a later claim of the id is left alone).
// Also run by the append of the event that ends the session (redis-events.ts).
export const DROP_CLAIM = `
local function drop_claim(node, gen, id)
  local sk = 'herd:s:' .. id
  local cur = redis.call('HMGET', sk, 'node', 'gen')
  if cur[1] == node and cur[2] == gen then redis.call('DEL', sk) end
  redis.call('SREM', 'herd:owned:' .. node, id)
end
`;

const CLAIM = `
if redis.call('EXISTS', 'herd:alive:' .. ARGV[1]) == 0 then return {'dead'} end
local sk = 'herd:s:' .. ARGV[3]
local cur = redis.call('HMGET', sk, 'node', 'gen', 'pool', 'state', 'info')
if cur[1] then return {'taken', cur[1], cur[2], cur[3], cur[4], cur[5] or ''} end
local gen = redis.call('INCR', 'herd:gen')
redis.call('HSET', sk, 'node', ARGV[1], 'gen', gen, 'pool', ARGV[2], 'state', ARGV[4], 'info', ARGV[5])
redis.call('SADD', 'herd:owned:' .. ARGV[1], ARGV[3])
return {'claimed', tostring(gen)}
`;

// Where an acquire stands: the id's record when some node has it, else every live node's
// record (for placement), in one round trip.
const LOCATE = `
local cur = redis.call('HMGET', 'herd:s:' .. ARGV[1], 'node', 'gen', 'pool', 'state', 'info')
if cur[1] then return {'taken', cur[1], cur[2], cur[3], cur[4], cur[5] or ''} end
local out = {'free'}
for _, n in ipairs(redis.call('SMEMBERS', 'herd:members')) do
  local rec = redis.call('GET', 'herd:alive:' .. n)
  if rec then table.insert(out, rec) end
end
return out
`;

const COMMIT = `
if redis.call('EXISTS', 'herd:alive:' .. ARGV[1]) == 0 then return 0 end
local sk = 'herd:s:' .. ARGV[3]
local cur = redis.call('HMGET', sk, 'node', 'gen')
if cur[1] ~= ARGV[1] or cur[2] ~= ARGV[2] then return 0 end
redis.call('HSET', sk, 'state', 'ready', 'info', ARGV[4])
return 1
`;

const DROP = `${DROP_CLAIM}
drop_claim(ARGV[1], ARGV[2], ARGV[3])
return 1
`;

/** A session key as read back. `info` is the owner's session JSON once `state` is ready. */
export interface SessionRecord {
  node: string;
  gen: string;
  pool: string;
  state: "pending" | "ready";
  info: string;
}

export type ClaimResult =
  | { kind: "claimed"; gen: string }
  | { kind: "taken"; record: SessionRecord }
  /** This node's lease is gone: it must rejoin before it may own anything. */
  | { kind: "dead" };

export type Located =
  | { kind: "taken"; record: SessionRecord }
  /** Nobody has the id: every live node's record, for placement. */
  | { kind: "free"; nodes: string[] };

/** A script's `{'taken', node, gen, pool, state, info}` answer. */
function takenRecord(r: string[]): SessionRecord {
  return {
    node: r[1]!,
    gen: r[2]!,
    pool: r[3]!,
    state: r[4] === "ready" ? "ready" : "pending",
    info: r[5] ?? "",
  };
}

export class RedisSessions {
  constructor(private readonly redis: RedisConnection) {}

  /** host:port of Redis without credentials, for messages. */
  where(): string {
    return this.redis.where();
  }

  /**
   * Takes `id` for `node` unless someone has it. `info` set: the session already runs here
   * (rebuilding the registry after Redis lost its data), stored as ready at once.
   */
  async claim(node: string, pool: string, id: string, info?: string): Promise<ClaimResult> {
    const r = (await this.redis.run(
      CLAIM,
      [],
      [node, pool, id, info === undefined ? "pending" : "ready", info ?? ""],
    )) as string[];
    if (r[0] === "dead") return { kind: "dead" };
    if (r[0] === "claimed") return { kind: "claimed", gen: r[1]! };
    return { kind: "taken", record: takenRecord(r) };
  }

  /** The id's record if some node has it, else the live nodes' records: one round trip. */
  async locate(id: string): Promise<Located> {
    const r = (await this.redis.run(LOCATE, [], [id])) as string[];
    if (r[0] === "taken") return { kind: "taken", record: takenRecord(r) };
    return { kind: "free", nodes: r.slice(1) };
  }

  /** Publishes the started session; false when this node no longer owns `id` at `gen`. */
  async commit(node: string, gen: string, id: string, info: string): Promise<boolean> {
    return (await this.redis.run(COMMIT, [], [node, gen, id, info])) === 1;
  }

  async drop(node: string, gen: string, id: string): Promise<void> {
    await this.redis.run(DROP, [], [node, gen, id]);
  }

  async session(id: string): Promise<SessionRecord | undefined> {
    const h = await this.redis.call((c) => c.hGetAll(`herd:s:${id}`));
    if (h.node === undefined) return undefined;
    return {
      node: h.node,
      gen: h.gen ?? "",
      pool: h.pool ?? "",
      state: h.state === "ready" ? "ready" : "pending",
      info: h.info ?? "",
    };
  }

  /** The `info` of every ready session (a SCAN: for a node that just joined). */
  async readySessions(): Promise<string[]> {
    return this.redis.call(async (c) => {
      const out: string[] = [];
      for await (const keys of c.scanIterator({ MATCH: "herd:s:*", COUNT: 500 })) {
        for (const key of keys) {
          const [state, info] = await c.hmGet(key, ["state", "info"]);
          if (state === "ready" && info) out.push(info);
        }
      }
      return out;
    });
  }
}
