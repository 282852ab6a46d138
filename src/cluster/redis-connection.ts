// herd's connection to Redis, and the only module that holds a Redis client. What herd keeps
// there is read and written by five parts, each through this connection:
//
//   redis-nodes.ts     herd:epoch, herd:members, herd:alive:{node}: node records and leases
//   redis-sessions.ts  herd:gen, herd:s:{id}, herd:owned:{node}: session claims and records
//   redis-events.ts    herd:rev, herd:events: the cluster's event stream
//   redis-rates.ts     herd:rate:{tenant}: tenants' acquire_rate buckets
//   redis-quota.ts     herd:tq:{tenant}, herd:tqh:{tenant}: tenants' max_sessions claims
//
// Every write that must be atomic across nodes is one Lua script (`run`), so Redis serialises
// them; a script may use another part's Lua functions (a reaped node's sessions become
// stream entries in the same script).
//
// Two connections: commands and scripts on one, the event stream's blocking read on the other
// (an XREAD BLOCK would stall every other command on a shared one).
//
// Concurrency: the clients never queue commands while disconnected (disableOfflineQueue), so a
// Redis outage surfaces at once as an error (HerdError unavailable, naming Redis) instead of as
// a hang; they reconnect, at most 250 ms apart, for as long as herd runs.
//
// Credentials: the URL may carry an ACL user and password (redis://user:pass@host) and TLS
// (rediss://). No message or log line carries them (redactRedisUrl). A Redis that refuses the
// credentials at start fails the start, saying so; later (an ACL changed under a running node)
// it is an outage like any other, retried until it is fixed.

import { createHash } from "node:crypto";
import { createClient, type RedisClientType } from "redis";
import type { Logger } from "../core/index.ts";
import { HerdError } from "../core/index.ts";

/** Redis's answers when it refuses who herd logs in as, or what that user may touch. */
const REFUSED = /^(WRONGPASS|NOAUTH|NOPERM)\b/;

/** `text` with the password of any redis:// or rediss:// URL in it replaced by `***`. */
export function redactRedisUrl(text: string): string {
  return text.replace(/(rediss?:\/\/[^:@/\s]*):[^@\s]*@/gi, "$1:***@");
}

export class RedisConnection {
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
  static async connect(url: string, logger: Logger): Promise<RedisConnection> {
    const redis = new RedisConnection(url, logger);
    try {
      await Promise.all([redis.client.connect(), redis.reader.connect()]);
      // A user without rights on herd's keys (or none given where Redis wants one) shows here.
      await redis.client.get("herd:epoch");
    } catch (err) {
      await redis.close();
      const message = redactRedisUrl(String((err as Error).message ?? err));
      if (REFUSED.test(message)) {
        const user = redis.user();
        throw new HerdError(
          "unauthenticated",
          `cluster: Redis ${redis.where()} refused herd's credentials (${user ? `user ${JSON.stringify(user)}` : "no user or password in the URL"}): ${message}; check the user and password in cluster.redis (or its redis_env variable) and the user's ACL (it needs herd:* keys, scripts and streams)`,
        );
      }
      throw redis.unavailable(err);
    }
    redis.starting = false;
    return redis;
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

  /** Runs a Lua script (EVALSHA, EVAL when Redis does not have it cached yet). */
  async run(script: string, keys: string[], args: string[]): Promise<unknown> {
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

  /**
   * Plain commands, on the command connection or (`blocking`, for XREAD BLOCK) the reader's
   * own. A failure is unavailable, naming Redis.
   */
  async call<T>(fn: (client: RedisClientType) => Promise<T>, blocking = false): Promise<T> {
    try {
      return await fn(blocking ? this.reader : this.client);
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
