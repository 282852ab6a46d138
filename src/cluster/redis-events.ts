// The cluster's event stream in Redis:
//
//   herd:rev      the cluster's event revision counter: the id of the next entry
//   herd:events   STREAM of every node's lifecycle events (field e = JSON), entry id
//                 `<revision>-0`, ~STREAM_MAXLEN entries: one cluster-wide order that
//                 WatchSessions resumes from
//
// Invariant: every entry is added by a script through XADD_EVENT (here, and when reaping a
// dead node: redis-nodes.ts), so revisions are gapless and increasing (a gap means entries were
// trimmed or Redis lost its data); an entry is never at or below the stream's tail or the
// appender's newest seen revision, so after Redis lost herd:rev the order still moves forward
// for everyone that watched before.
// Concurrency: appends are scripts, serialised by Redis; the blocking read has a connection of
// its own (redis-connection.ts).

import type { RedisConnection } from "./redis-connection.ts";
import { END_QUOTA_CLAIM } from "./redis-quota.ts";
import { DROP_CLAIM } from "./redis-sessions.ts";

export const EVENTS = "herd:events";
export const STREAM_MAXLEN = "10000";

// Appends one event as revision INCR(herd:rev); never at or below the stream's tail or
// `floor` (the caller's newest seen revision).
export const XADD_EVENT = `
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
// ARGV[7..8] set (tenant, id): the event ends that tenant's session, its max_sessions claim too.
const APPEND = `${XADD_EVENT}${DROP_CLAIM}${END_QUOTA_CLAIM}
if ARGV[4] ~= '' then drop_claim(ARGV[4], ARGV[5], ARGV[6]) end
if ARGV[7] ~= '' then end_quota_claim(ARGV[7], ARGV[8]) end
return xadd_event(ARGV[1], ARGV[2], ARGV[3])
`;

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

export class RedisEvents {
  constructor(private readonly redis: RedisConnection) {}

  /** host:port of Redis without credentials, for messages. */
  where(): string {
    return this.redis.where();
  }

  /**
   * Appends `json` to herd:events; returns its revision. `floor`: the newest revision seen.
   * `drop`: the claim this event ends, given up in the same script (as RedisSessions.drop does);
   * `quota`: the tenant's session this event ends, whose max_sessions claim goes too.
   */
  async append(
    json: string,
    floor: number,
    drop?: { node: string; gen: string; id: string },
    quota?: { tenant: string; id: string },
  ): Promise<number> {
    const claim = drop ? [drop.node, drop.gen, drop.id] : ["", "", ""];
    const tenant = quota ? [quota.tenant, quota.id] : ["", ""];
    return Number(
      await this.redis.run(
        APPEND,
        [EVENTS],
        [STREAM_MAXLEN, String(floor), json, ...claim, ...tenant],
      ),
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
}
