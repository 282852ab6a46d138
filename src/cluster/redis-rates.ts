// Tenants' acquire_rate buckets shared by every node of the cluster (core's SharedRates):
//
//   herd:rate:{name}   HASH tokens, at (ms on Redis's clock): the bucket of the tenant {name}
//
// Invariant: a bucket holds at most `count` tokens and refills at `count` per `perMs`, on
// Redis's one clock whatever the nodes' clocks say; a full bucket's key expires (absent: full).
// Concurrency: each take is one script, serialised by Redis.

import type { SharedRates } from "../core/index.ts";
import type { RedisConnection } from "./redis-connection.ts";

const TAKE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local count = tonumber(ARGV[1])
local per = tonumber(ARGV[2])
local cur = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(cur[1]) or count
local at = tonumber(cur[2]) or now
tokens = math.min(count, tokens + math.max(0, now - at) * count / per)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = math.ceil((1 - tokens) * per / count) end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], per)
return wait
`;

export class RedisRates implements SharedRates {
  constructor(private readonly redis: RedisConnection) {}

  async take(tenant: string, count: number, perMs: number): Promise<number> {
    const wait = await this.redis.run(
      TAKE,
      [`herd:rate:${tenant}`],
      [String(count), String(perMs)],
    );
    return Number(wait);
  }
}
