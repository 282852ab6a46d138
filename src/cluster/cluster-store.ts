// Everything herd keeps in Redis, and the only module that speaks to it. Every write that must
// be atomic across nodes is one Lua script, so Redis serialises them:
//
//   herd:epoch          random id of this Redis dataset; a change means Redis lost its data
//   herd:gen            fencing generation counter (INCR per claim)
//   herd:members        SET of node names that joined and were not yet reaped
//   herd:alive:{node}   the node's record (addresses, pool capacity), PX = lease: its liveness
//   herd:owned:{node}   SET of the session ids the node owns
//   herd:s:{id}         HASH node, gen, pool, state (pending|ready), info (session JSON)
//   herd:rev            the cluster's event revision counter
//   herd:events         STREAM of every node's lifecycle events (field e = JSON), entry id
//                       `<revision>-0`: one cluster-wide order WatchSessions resumes from
//
// Invariants: a session key exists only while its owner's id is in herd:owned:{owner}; only a
// node whose alive key exists can claim or commit (a node the cluster declared dead cannot
// take new ids); reaping a dead node deletes exactly the session keys it still owns. Every
// entry of herd:events is added by a script through XADD_EVENT, so revisions are gapless and
// increasing (a gap means entries were trimmed or Redis lost its data).
// Concurrency: the client never queues commands while disconnected (disableOfflineQueue), so
// a Redis outage surfaces at once as an error instead of as a hang.
//
// Credentials: the URL may carry an ACL user and password (redis://user:pass@host) and TLS
// (rediss://). No message or log line carries them (redactRedisUrl). A Redis that refuses the
// credentials at start fails the start, saying so; later (an ACL changed under a running node)
// it is an outage like any other, retried until it is fixed.

import { createHash, randomBytes } from "node:crypto";
import { createClient, type RedisClientType } from "redis";
import type { Logger } from "../core/index.ts";
import { HerdError } from "../core/index.ts";

const EVENTS = "herd:events";

/** Redis's answers when it refuses who herd logs in as, or what that user may touch. */
const REFUSED = /^(WRONGPASS|NOAUTH|NOPERM)\b/;

/** `text` with the password of any redis:// or rediss:// URL in it replaced by `***`. */
export function redactRedisUrl(text: string): string {
  return text.replace(/(rediss?:\/\/[^:@/\s]*):[^@\s]*@/gi, "$1:***@");
}
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

// Gives up `node`'s claim of `id` at generation `gen` (a later claim of the id is left alone).
const DROP_CLAIM = `
local function drop_claim(node, gen, id)
  local sk = 'herd:s:' .. id
  local cur = redis.call('HMGET', sk, 'node', 'gen')
  if cur[1] == node and cur[2] == gen then redis.call('DEL', sk) end
  redis.call('SREM', 'herd:owned:' .. node, id)
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

export type RenewResult = "ok" | "expired" | "reset";

/** One entry of herd:events: a HerdEvent without revision, plus `info` on lost-by-reap. */
export interface StreamEntry {
  /** The cluster-wide revision: the entry id is `<revision>-0`. */
  revision: number;
  json: string;
}

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

function revisionOf(id: string): number {
  return Number(id.slice(0, id.indexOf("-")));
}

export class ClusterStore {
  private readonly client: RedisClientType;
  /** A second connection: XREAD BLOCK would stall every other command on a shared one. */
  private readonly reader: RedisClientType;
  /** SHA1 of each script: EVALSHA sends 40 bytes instead of the script every call. */
  private readonly shas = new Map<string, string>();
  private closed = false;
  /** Until connect() has succeeded: refused credentials end the attempt instead of retrying. */
  private starting = true;
  /** Called when the command connection is back after an outage (the lease renews at once). */
  private reconnected: () => void = () => {};

  private constructor(
    private readonly url: string,
    logger: Logger,
  ) {
    const make = (role: string) => {
      const c = createClient({
        url,
        disableOfflineQueue: true,
        socket: {
          connectTimeout: 2_000,
          // Keep trying for as long as herd runs: the cluster converges when Redis is back.
          reconnectStrategy: (retries: number, cause: Error) =>
            this.starting && REFUSED.test(cause?.message ?? "")
              ? cause
              : // At most 250 ms apart: every ms between Redis's return and the lease renewal
                // counts against the outage a node survives without fencing (node-lease.ts).
                Math.min(50 * 2 ** retries, 250),
        },
      }) as RedisClientType;
      let down = false;
      let connected = false;
      c.on("error", (err: Error) => {
        if (!down && !this.starting) {
          logger.warn(
            { err: redactRedisUrl(err.message), role },
            `cluster: Redis ${this.where()} error`,
          );
        }
        down = true;
      });
      c.on("ready", () => {
        if (down) logger.info({ role }, `cluster: Redis ${this.where()} reachable again`);
        if (connected && role === "commands") this.reconnected();
        down = false;
        connected = true;
      });
      return c;
    };
    this.client = make("commands");
    this.reader = make("events");
  }

  /** Connects both clients; throws HerdError unavailable naming Redis when it cannot. */
  static async connect(url: string, logger: Logger): Promise<ClusterStore> {
    const store = new ClusterStore(url, logger);
    try {
      await Promise.all([store.client.connect(), store.reader.connect()]);
      // A user without rights on herd's keys (or none given where Redis wants one) shows here.
      await store.client.get("herd:epoch");
    } catch (err) {
      await store.close();
      const message = redactRedisUrl(String((err as Error).message ?? err));
      if (REFUSED.test(message)) {
        const user = store.user();
        throw new HerdError(
          "unauthenticated",
          `cluster: Redis ${store.where()} refused herd's credentials (${user ? `user ${JSON.stringify(user)}` : "no user or password in the URL"}): ${message}; check the user and password in cluster.redis (or its redis_env variable) and the user's ACL (it needs herd:* keys, scripts and streams)`,
        );
      }
      throw store.unavailable(err);
    }
    store.starting = false;
    return store;
  }

  /** The URL's user name (never its password), if any. */
  private user(): string | undefined {
    try {
      const u = new URL(this.url);
      return u.username ? decodeURIComponent(u.username) : u.password ? "default" : undefined;
    } catch {
      return undefined;
    }
  }

  onReconnect(listener: () => void): void {
    this.reconnected = listener;
  }

  /** host:port of Redis without credentials, for messages. */
  where(): string {
    try {
      const u = new URL(this.url);
      return `at ${u.protocol === "rediss:" ? "rediss://" : ""}${u.host}`;
    } catch {
      return "(bad URL)";
    }
  }

  unavailable(err: unknown): HerdError {
    return new HerdError(
      "unavailable",
      `cluster: Redis ${this.where()} is unreachable (${redactRedisUrl(String((err as Error).message ?? err))}); cluster-wide acquires fail until it is back`,
    );
  }

  private async run(script: string, keys: string[], args: string[]): Promise<unknown> {
    const c = this.client;
    let sha = this.shas.get(script);
    if (sha === undefined) {
      sha = createHash("sha1").update(script).digest("hex");
      this.shas.set(script, sha);
    }
    try {
      try {
        return await c.evalSha(sha, { keys, arguments: args });
      } catch (err) {
        // Not in Redis's script cache yet (first call, or Redis restarted): EVAL loads it.
        if (!String((err as Error).message).startsWith("NOSCRIPT")) throw err;
        return await c.eval(script, { keys, arguments: args });
      }
    } catch (err) {
      if (err instanceof HerdError) throw err;
      throw this.unavailable(err);
    }
  }

  /** Registers this node (dropping what a previous life of it owned); returns the epoch. */
  async join(node: string, record: string, leaseMs: number): Promise<string> {
    const epoch = randomBytes(12).toString("base64url");
    return String(
      await this.run(JOIN, [EVENTS], [node, record, String(leaseMs), epoch, STREAM_MAXLEN]),
    );
  }

  async renew(node: string, record: string, leaseMs: number, epoch: string): Promise<RenewResult> {
    return (await this.run(RENEW, [], [node, record, String(leaseMs), epoch])) as RenewResult;
  }

  /**
   * Takes `id` for `node` unless someone has it. `info` set: the session already runs here
   * (rebuilding the registry after Redis lost its data), stored as ready at once.
   */
  async claim(node: string, pool: string, id: string, info?: string): Promise<ClaimResult> {
    const r = (await this.run(
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
    const r = (await this.run(LOCATE, [], [id])) as string[];
    if (r[0] === "taken") return { kind: "taken", record: takenRecord(r) };
    return { kind: "free", nodes: r.slice(1) };
  }

  /** Publishes the started session; false when this node no longer owns `id` at `gen`. */
  async commit(node: string, gen: string, id: string, info: string): Promise<boolean> {
    return (await this.run(COMMIT, [], [node, gen, id, info])) === 1;
  }

  async drop(node: string, gen: string, id: string): Promise<void> {
    await this.run(DROP, [], [node, gen, id]);
  }

  async session(id: string): Promise<SessionRecord | undefined> {
    let h: Record<string, string>;
    try {
      h = await this.client.hGetAll(`herd:s:${id}`);
    } catch (err) {
      throw this.unavailable(err);
    }
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
    try {
      const out: string[] = [];
      for await (const keys of this.client.scanIterator({ MATCH: "herd:s:*", COUNT: 500 })) {
        for (const key of keys) {
          const [state, info] = await this.client.hmGet(key, ["state", "info"]);
          if (state === "ready" && info) out.push(info);
        }
      }
      return out;
    } catch (err) {
      throw this.unavailable(err);
    }
  }

  /** The records of every live node. */
  async nodes(): Promise<string[]> {
    try {
      const names = await this.client.sMembers("herd:members");
      if (names.length === 0) return [];
      const records = await this.client.mGet(names.map((n) => `herd:alive:${n}`));
      return records.filter((r): r is string => typeof r === "string");
    } catch (err) {
      throw this.unavailable(err);
    }
  }

  /** A clean shutdown: this node and whatever it still owns leave the cluster now. */
  async leave(node: string): Promise<void> {
    await this.run(LEAVE, [], [node]);
  }

  /** Declares nodes whose lease ran out dead; their sessions become node_lost events. */
  async reap(self: string): Promise<number> {
    return Number(await this.run(REAP, [EVENTS], [self, STREAM_MAXLEN]));
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
    return Number(await this.run(APPEND, [EVENTS], [STREAM_MAXLEN, String(floor), json, ...claim]));
  }

  /** The newest revision in herd:events (0 when empty): where a new reader starts. */
  async lastRevision(): Promise<number> {
    try {
      const tail = (await this.client.sendCommand(["XREVRANGE", EVENTS, "+", "-", "COUNT", "1"])) as
        | [string, string[]][]
        | null;
      return tail?.[0] ? revisionOf(tail[0][0]) : 0;
    } catch (err) {
      throw this.unavailable(err);
    }
  }

  /** Entries after revision `after`, waiting up to `blockMs` for the first (the reader's link). */
  async read(after: number, blockMs: number): Promise<StreamEntry[]> {
    return this.entries(this.reader, [
      "XREAD",
      "COUNT",
      "512",
      "BLOCK",
      String(blockMs),
      "STREAMS",
      EVENTS,
      `${after}-0`,
    ]);
  }

  /** Up to `count` entries with revision in (after, upTo], oldest first (no blocking). */
  async range(after: number, upTo: number, count: number): Promise<StreamEntry[]> {
    try {
      const r = (await this.client.sendCommand([
        "XRANGE",
        EVENTS,
        `(${after}-0`,
        `${upTo}-0`,
        "COUNT",
        String(count),
      ])) as [string, string[]][] | null;
      return (r ?? []).map(([id, fields]) => ({
        revision: revisionOf(id),
        json: fields[1] ?? "{}",
      }));
    } catch (err) {
      throw this.unavailable(err);
    }
  }

  private async entries(c: RedisClientType, command: string[]): Promise<StreamEntry[]> {
    try {
      const r = (await c.sendCommand(command)) as [string, [string, string[]][]][] | null;
      const entries = r?.[0]?.[1] ?? [];
      return entries.map(([id, fields]) => ({ revision: revisionOf(id), json: fields[1] ?? "{}" }));
    } catch (err) {
      throw this.unavailable(err);
    }
  }

  /** Drops both connections at once (a blocked XREAD included). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const c of [this.client, this.reader]) if (c.isOpen) c.destroy();
  }
}
