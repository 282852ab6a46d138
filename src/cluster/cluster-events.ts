// Lifecycle events across the cluster, on a Redis Stream (herd:events): every node appends its
// own events, and reads everyone's, republishing the other nodes' events into its local event
// log (for this node's metrics and data plane) and feeding ClusterWatch, which serves
// WatchSessions in the stream's one cluster-wide order. Keyspace notifications are not used:
// they are fire-and-forget and lose events whenever a reader blinks; a stream is read from an id.
//
// The same reader keeps `remote`: the sessions other nodes own, as their events describe
// them, so `lookup` can answer synchronously on the data plane's hot path.
//
// Concurrency: one pump (local → stream) and one reader (stream → local), each a sequential
// loop. Connection events (one per data-plane connection) stay local: they would put Redis on
// the data plane's hot path. While Redis is away, local events are not appended (logged once)
// and this node's watchers are cut off, so none of them silently misses its events.

import type { HerdEvent, HerdEventType, Logger, SessionDirectory } from "../core/index.ts";
import type { ClusterWatch } from "./cluster-watch.ts";
import { decodeEvent, encodeEvent } from "./event-wire.ts";
import type { LocalClaims } from "./local-claims.ts";
import type { RedisEvents } from "./redis-events.ts";
import type { RedisSessions } from "./redis-sessions.ts";
import { decodeSession, type NodeAddresses, type RemoteSession } from "./session-codec.ts";
import type { RecordKeys } from "./signed-record.ts";

const LOCAL_ONLY = new Set<HerdEventType>(["connection_opened", "connection_closed"]);
const ENDS = new Set<HerdEventType>(["session_released", "session_expired", "session_lost"]);

/** A remote session as this node knows it; `ended` aborts when its end event arrives. */
export interface KnownRemote extends RemoteSession {
  ended: AbortController;
}

export class ClusterEvents {
  readonly remote = new Map<string, KnownRemote>();
  private stopped = false;
  private readonly abort = new AbortController();
  /** Appends are failing (logged once per outage). */
  private failing = false;
  private done: Promise<unknown> = Promise.resolve();
  /** The local log's revision the pump has handled up to (appended, or left local). */
  private pumped = 0;

  constructor(
    private readonly store: RedisEvents,
    private readonly sessions: Pick<RedisSessions, "readySessions">,
    private readonly local: SessionDirectory,
    private readonly watch: ClusterWatch,
    private readonly self: NodeAddresses,
    private readonly logger: Logger,
    /** Told each local event, in order, before it is appended: the generation of the claim
     * the event ends, if any, which the append drops in the same script. */
    private readonly claims: Pick<LocalClaims, "ended">,
    private readonly keys: RecordKeys,
  ) {}

  async start(): Promise<void> {
    const from = await this.store.lastRevision();
    this.watch.startAt(from);
    // Sessions that began before this node joined: their acquire events are already read.
    for (const info of await this.sessions.readySessions()) {
      const remote = decodeSession(info, this.keys);
      if (remote && remote.info.node !== this.self.node) this.learn(remote);
    }
    this.done = Promise.allSettled([this.pump(), this.read(from)]);
  }

  /** Remember a remote session learnt some other way (a Redis read, a forwarded acquire). */
  learn(session: RemoteSession): KnownRemote {
    const known = this.remote.get(session.info.id);
    if (known && known.info.node === session.info.node) return known;
    known?.ended.abort();
    const fresh = { ...session, ended: new AbortController() };
    this.remote.set(session.info.id, fresh);
    return fresh;
  }

  forget(id: string, node?: string): void {
    const known = this.remote.get(id);
    if (known && (node === undefined || known.info.node === node)) {
      this.remote.delete(id);
      known.ended.abort({ kind: "lost", reason: "ended on its node" });
    }
  }

  private async pump(): Promise<void> {
    const sub = this.local.subscribe({ bufferLimit: 1_000_000 });
    this.abort.signal.addEventListener("abort", () => sub.close(), { once: true });
    for await (const event of sub) {
      await this.share(event);
      this.pumped = event.revision;
    }
  }

  private async share(event: HerdEvent): Promise<void> {
    if (event.node !== undefined) return; // republished from another node
    const ends = this.claims.ended(event);
    if (LOCAL_ONLY.has(event.type)) {
      this.watch.local({ ...event, node: this.self.node });
      return;
    }
    try {
      const drop =
        ends === undefined || event.sessionId === undefined
          ? undefined
          : { node: this.self.node, gen: ends, id: event.sessionId };
      // Whether or not this node held the id's claim: its tenant's max_sessions claim goes.
      const tenant = ENDS.has(event.type) ? event.session?.tenant : undefined;
      const quota =
        tenant === undefined || event.sessionId === undefined
          ? undefined
          : { tenant, id: event.sessionId };
      await this.store.append(
        encodeEvent(event, this.self, this.keys),
        this.watch.revision(),
        drop,
        quota,
      );
      this.failing = false;
    } catch (err) {
      if (!this.failing) {
        this.logger.warn({ err: (err as Error).message }, "cluster: events not shared");
        this.watch.cutOff(`this node's events cannot reach Redis ${this.store.where()}`);
      }
      this.failing = true;
    }
  }

  /**
   * Waits (up to `timeoutMs`) until every local event so far is in Redis: shutdown calls it
   * after the last session ended and before it drops the connection, so the end events of a
   * stopping node reach the cluster instead of failing against a closed client.
   */
  async flush(timeoutMs: number): Promise<void> {
    const target = this.local.revision();
    const until = Date.now() + timeoutMs;
    while (this.pumped < target && !this.stopped && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  private async read(from: number): Promise<void> {
    let after = from;
    while (!this.stopped) {
      let entries: Awaited<ReturnType<RedisEvents["read"]>>;
      try {
        entries = await this.store.read(after, 1_000);
        // Idle: did the stream go back below us (Redis lost its data)? Then follow the new one.
        if (entries.length === 0) {
          const latest = await this.store.lastRevision();
          if (latest < after) {
            this.watch.restart(latest, `Redis ${this.store.where()} lost the event stream`);
            after = latest;
          }
        }
      } catch {
        if (this.stopped) return;
        this.watch.cutOff(`Redis ${this.store.where()} is unreachable`);
        await new Promise((r) => setTimeout(r, 250));
        continue;
      }
      for (const { revision, json } of entries) {
        after = revision;
        this.apply(revision, json);
      }
    }
  }

  private apply(revision: number, json: string): void {
    const decoded = decodeEvent(revision, json, this.keys);
    if (!decoded) return;
    const { event, remote } = decoded;
    const lostByReap = event.reason === "node_lost";
    const ours = event.node === this.self.node && !lostByReap; // already in the local log
    if (!ours && event.sessionId !== undefined) {
      if (event.type === "session_acquired" && remote) this.learn(remote);
      else if (ENDS.has(event.type)) this.forget(event.sessionId, event.node);
    }
    this.watch.apply(event);
    if (!ours) {
      const { revision: _r, time: _t, ...rest } = event;
      this.local.publish(rest);
    }
  }

  /** Stops both loops; `settled` resolves once they have (after the store closes). */
  stop(): void {
    this.stopped = true;
    this.abort.abort();
  }

  settled(): Promise<unknown> {
    return this.done;
  }
}
