// Lifecycle events across the cluster, on a Redis Stream (herd:events): every node appends its
// own events, and reads everyone's, republishing the other nodes' events into its local event
// log — so WatchSessions on any node streams every node's events, in the order this node read
// them, with this node's resumable revisions. Keyspace notifications are not used: they are
// fire-and-forget and lose events whenever a reader blinks; a stream is read from an id.
//
// The same reader keeps `remote`: the sessions other nodes own, as their events describe
// them, so `lookup` can answer synchronously on the data plane's hot path.
//
// Concurrency: one pump (local → stream) and one reader (stream → local), each a sequential
// loop. Connection events (one per data-plane connection) stay local: they would put Redis on
// the data plane's hot path. While Redis is away, local events are not appended (logged once).

import type { Logger } from "../pool/logger.ts";
import type { HerdEvent, HerdEventType, SessionDirectory } from "../pool/types.ts";
import type { ClusterStore } from "./cluster-store.ts";
import {
  decodeSession,
  encodeSession,
  type NodeAddresses,
  type RemoteSession,
} from "./session-codec.ts";

const LOCAL_ONLY = new Set<HerdEventType>(["connection_opened", "connection_closed"]);
const ENDS = new Set<HerdEventType>(["session_released", "session_expired", "session_lost"]);

/** A remote session as this node knows it; `ended` aborts when its end event arrives. */
export interface KnownRemote extends RemoteSession {
  ended: AbortController;
}

type Wire = Omit<HerdEvent, "revision" | "time" | "session"> & {
  time: string;
  session?: string;
  /** On node_lost entries written by Redis-side scripts: the session as stored. */
  info?: string;
};

export class ClusterEvents {
  readonly remote = new Map<string, KnownRemote>();
  private stopped = false;
  private readonly abort = new AbortController();
  private done: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly store: ClusterStore,
    private readonly local: SessionDirectory,
    private readonly self: NodeAddresses,
    private readonly logger: Logger,
    /** Called for each local event, in order, before it is appended (e.g. to drop the claim). */
    private readonly onLocal: (event: HerdEvent) => void,
  ) {}

  async start(): Promise<void> {
    const from = await this.store.lastEventId();
    // Sessions that began before this node joined: their acquire events are already read.
    for (const info of await this.store.readySessions()) {
      const remote = decodeSession(info);
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
    let failing = false;
    for await (const event of sub) {
      if (event.node !== undefined) continue; // republished from another node
      this.onLocal(event);
      if (LOCAL_ONLY.has(event.type)) continue;
      const { revision: _r, time, session, ...rest } = event;
      const wire: Wire = {
        ...rest,
        node: this.self.node,
        time: time.toISOString(),
        ...(session && { session: encodeSession(session, this.self) }),
      };
      try {
        await this.store.append(JSON.stringify(wire));
        failing = false;
      } catch (err) {
        if (!failing)
          this.logger.warn({ err: (err as Error).message }, "cluster: events not shared");
        failing = true;
      }
    }
  }

  private async read(from: string): Promise<void> {
    let after = from;
    while (!this.stopped) {
      let entries: Awaited<ReturnType<ClusterStore["read"]>>;
      try {
        entries = await this.store.read(after, 1_000);
      } catch {
        if (this.stopped) return;
        await new Promise((r) => setTimeout(r, 250));
        continue;
      }
      for (const { id, json } of entries) {
        after = id;
        this.apply(json);
      }
    }
  }

  private apply(json: string): void {
    let w: Wire;
    try {
      w = JSON.parse(json) as Wire;
    } catch {
      return;
    }
    if (typeof w.type !== "string" || typeof w.node !== "string") return;
    const remote = decodeSession(w.session ?? w.info);
    const sessionId = w.sessionId ?? remote?.info.id;
    const lostByReap = w.reason === "node_lost";
    if (w.node === this.self.node && !lostByReap) return; // our own, already in the local log
    if (sessionId !== undefined) {
      if (w.type === "session_acquired" && remote) this.learn(remote);
      else if (ENDS.has(w.type)) this.forget(sessionId, w.node);
    }
    const { info: _i, time: _t, session: _s, ...rest } = w;
    this.local.publish({ ...rest, ...(remote && { session: remote.info }) });
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
