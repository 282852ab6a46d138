// The SessionDirectory of a cluster node: this node's Herd, plus Redis for everything that
// must hold cluster-wide. The planes use it exactly as they use a Herd.
//
// Invariant (one id → one worker, cluster-wide): a local worker is started for an id only
// after this node won the id's claim in Redis (an atomic script: create-if-absent plus a fresh
// fencing generation), and it is published only if this node still holds that generation;
// otherwise it is killed. A node serves a local session only while its lease is valid
// (node-lease.ts), so a node the cluster declared dead never serves an id someone else owns.
//
// Routing: an id this node does not run is looked up in Redis (or in the event-fed cache);
// its SessionInfo then carries `peer` (forward one hop) and `node`. A call that arrived from
// another node (`viaPeer`) is served here or refused — never forwarded again. Nothing read
// from Redis is trusted: session records must carry the cluster's signature (session-codec.ts)
// and the owner's addresses come from its signed live record (live-nodes.ts), never from the
// session record, so a writer of Redis without the secret cannot redirect traffic.
//
// Concurrency: claims are serialised by Redis; concurrent local acquires of one id share the
// Herd's own singleflight; callers on other nodes wait until the winner's claim is ready.

import { AsyncLocalStorage } from "node:async_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import type {
  AcquireOptions,
  ClusterRouting,
  EventSubscription,
  HerdEvent,
  HerdStats,
  Lease,
  LeaseKind,
  NodeDrain,
  PoolOptions,
  ReleaseOptions,
  SessionDirectory,
  SessionInfo,
  SubscribeOptions,
} from "../core/index.ts";
import { HerdError, newSessionId, validateSessionId } from "../core/index.ts";
import { resolvePoolOptions } from "../pool/index.ts";
import type { CapacityLedger } from "./capacity-ledger.ts";
import { clusterStats } from "./cluster-stats.ts";
import type { ClusterStore, SessionRecord } from "./cluster-store.ts";
import type { ClusterWatch } from "./cluster-watch.ts";
import type { LocalClaims } from "./local-claims.ts";
import type { NodeLease } from "./node-lease.ts";
import type { PeerAuth } from "./peer-auth.ts";
import type { RemoteSessions } from "./remote-sessions.ts";

/** Set while serving a node-to-node call: the calling node's name. */
export const viaPeer = new AsyncLocalStorage<string>();

/** How long a caller waits for another node's pending claim to become a session. */
const PENDING_WAIT_MS = 120_000;

export interface ClusterParts {
  /** This node's Herd. */
  local: SessionDirectory;
  /** This node's name. */
  node: string;
  store: ClusterStore;
  lease: NodeLease;
  watch: ClusterWatch;
  auth: PeerAuth;
  capacity: CapacityLedger;
  claims: LocalClaims;
  remotes: RemoteSessions;
  /** While it drains, this node places no new session on itself (its record says so). */
  drain: NodeDrain;
}

export class ClusterDirectory implements SessionDirectory, ClusterRouting {
  private readonly local: SessionDirectory;
  readonly node: string;

  constructor(private readonly parts: ClusterParts) {
    this.local = parts.local;
    this.node = parts.node;
  }

  poolNames(): string[] {
    return this.local.poolNames();
  }

  poolOptions(pool: string): PoolOptions {
    if (this.local.poolNames().includes(pool)) return this.local.poolOptions(pool);
    // A pool only other nodes run: its sessions' options are their owner's business; this
    // node only forwards (no data_timeout of its own).
    if (this.parts.remotes.inPool(pool)) {
      return resolvePoolOptions({ name: pool, command: ["(remote)"] });
    }
    return this.local.poolOptions(pool); // throws not_found
  }

  private requireLease(): void {
    if (!this.parts.lease.valid()) {
      throw new HerdError(
        "unavailable",
        `cluster: this node cannot renew its lease in Redis ${this.parts.store.where()}; cluster-wide acquires fail until Redis is back`,
      );
    }
  }

  async acquire(
    pool: string,
    sessionId: string | undefined,
    opts: AcquireOptions = {},
  ): Promise<SessionInfo> {
    const id =
      sessionId === undefined || sessionId === "" ? newSessionId() : validateSessionId(sessionId);
    // Live here: the local acquire restarts its idle clock (and checks the pool), as on one node.
    if (this.local.lookup(id) && this.parts.lease.valid()) {
      return this.mine(await this.local.acquire(pool, id, opts));
    }
    this.requireLease();
    if (viaPeer.getStore() !== undefined) return this.acquireHere(pool, id, opts);
    const runsHere = this.local.poolNames().includes(pool);
    // Room here: the claim itself tells whether another node has the id (one round trip less).
    if (runsHere && !this.parts.drain.draining && this.parts.capacity.freeHere(pool) > 0) {
      return this.placeHere(pool, id, opts);
    }
    const deadline = Date.now() + PENDING_WAIT_MS;
    let records: string[];
    for (;;) {
      // One round trip: the id's record if some node has it, else every live node's record.
      const found = await this.parts.store.locate(id);
      if (found.kind === "free") {
        records = found.nodes;
        break;
      }
      const got = await this.fromRecord(found.record, pool, id, opts);
      if (got) return got;
      if (Date.now() > deadline) {
        throw new HerdError("deadline_exceeded", `session ${id}: its owner never started it`);
      }
      await sleep(20, undefined, { signal: opts.signal }).catch(() => {
        throw new HerdError("cancelled", "acquire cancelled");
      });
    }
    // From here to the reservation nothing awaits (capacity-ledger.ts).
    const { capacity } = this.parts;
    const where = capacity.choose(pool, runsHere, records);
    if (where === undefined || where.node === this.node) return this.placeHere(pool, id, opts);
    return capacity.sending(where.node, pool, () =>
      this.parts.remotes.acquireOn(where, pool, id, opts),
    );
  }

  /** acquireHere, counted as in flight so concurrent placements see the slot taken. */
  private placeHere(pool: string, id: string, opts: AcquireOptions): Promise<SessionInfo> {
    return this.parts.capacity.placingHere(pool, () => this.acquireHere(pool, id, opts));
  }

  /** A session some node holds in Redis: ours, ready elsewhere, or (undefined) still pending. */
  private async fromRecord(
    record: SessionRecord,
    pool: string,
    id: string,
    opts: AcquireOptions,
  ): Promise<SessionInfo | undefined> {
    if (record.pool !== pool) {
      throw new HerdError(
        "failed_precondition",
        `session is live in pool ${JSON.stringify(record.pool)}, not ${JSON.stringify(pool)}`,
      );
    }
    if (record.node === this.node) {
      // Ours: joins the local singleflight (or finds the session it started).
      return this.mine(await this.local.acquire(pool, id, opts));
    }
    if (record.state !== "ready") return undefined;
    return this.parts.remotes.acquired(record, id, opts, viaPeer.getStore() !== undefined);
  }

  /** Place the session on this node: win the claim, start the worker, publish it. */
  private async acquireHere(pool: string, id: string, opts: AcquireOptions): Promise<SessionInfo> {
    const { store } = this.parts;
    const deadline = Date.now() + PENDING_WAIT_MS;
    for (;;) {
      if (this.parts.drain.draining) {
        // A node that placed here from a record older than the drain: it may try another.
        const found = await store.session(id);
        if (found) {
          const got = await this.fromRecord(found, pool, id, opts);
          if (got) return got;
        }
        throw new HerdError(
          "unavailable",
          `cluster: node ${this.node} is draining: it takes no new sessions`,
        );
      }
      const started = await this.parts.claims.start(pool, id, opts);
      if (started.kind === "started") return this.mine(started.session);
      const found = await this.fromRecord(started.record, pool, id, opts);
      if (found) return found;
      if (Date.now() > deadline) {
        throw new HerdError("deadline_exceeded", `session ${id}: its owner never started it`);
      }
      await sleep(20);
    }
  }

  private mine(s: SessionInfo): SessionInfo {
    return { ...s, node: this.node };
  }

  lookup(sessionId: string): SessionInfo | undefined {
    const here = this.local.lookup(sessionId);
    if (here) {
      if (this.parts.lease.valid()) return this.mine(here);
      this.parts.lease.lapse();
      return undefined;
    }
    return this.parts.remotes.get(sessionId);
  }

  find(sessionId: string): Promise<SessionInfo | undefined> {
    return this.parts.remotes.find(sessionId);
  }

  verifyPeer(credential: string, connection: object): boolean {
    return this.parts.auth.verifyConnection(credential, connection) !== undefined;
  }

  async release(sessionId: string, opts: ReleaseOptions = {}): Promise<SessionInfo> {
    if (this.local.lookup(sessionId)) return this.mine(await this.local.release(sessionId, opts));
    // A call from a peer is served here or refused, never forwarded again.
    const released =
      viaPeer.getStore() === undefined
        ? await this.parts.remotes.release(sessionId, opts)
        : undefined;
    if (released) return released;
    throw new HerdError("not_found", `no live session ${JSON.stringify(sessionId)}`);
  }

  /**
   * A remote session's idle clock is its owner's, and every caller of touch here also reaches
   * the owner, which touches it there: a forwarded data-plane request, the peer hold (attach)
   * behind a HoldSession, the forwarded acquire behind an AcquireSession.
   */
  touch(sessionId: string): void {
    this.local.touch(sessionId);
  }

  /**
   * Only a session running here has a reconnect window here. For a remote one the owner opens
   * its own: the peer hold this node keeps there closes with the client's (see lease).
   */
  clientGone(sessionId: string): void {
    this.local.clientGone(sessionId);
  }

  lease(sessionId: string, kind: LeaseKind): Lease {
    if (this.local.lookup(sessionId)) return this.local.lease(sessionId, kind);
    return this.parts.remotes.lease(sessionId, kind);
  }

  sessions(pool?: string): SessionInfo[] {
    const here = this.local.poolNames().includes(pool ?? "") || pool === undefined;
    const local = here ? this.local.sessions(pool).map((s) => this.mine(s)) : [];
    return [...local, ...this.parts.remotes.list(pool)];
  }

  stats(pool?: string): HerdStats {
    const runsHere = pool === undefined || this.local.poolNames().includes(pool);
    const local = runsHere ? this.local.stats(pool) : { ...this.local.stats(), pools: [] };
    return clusterStats(local, this.parts.capacity.observed(), pool);
  }

  revision(): number {
    return this.local.revision();
  }

  subscribe(opts?: SubscribeOptions): EventSubscription {
    const sub = this.local.subscribe(opts);
    const node = this.node;
    return {
      close: () => sub.close(),
      async *[Symbol.asyncIterator]() {
        for await (const e of sub) yield e.node === undefined ? { ...e, node } : e;
      },
    };
  }

  watch(opts?: SubscribeOptions): { events: EventSubscription; revision: number } {
    const { watch } = this.parts;
    return { events: watch.subscribe(opts), revision: watch.revision() };
  }

  publish(event: Omit<HerdEvent, "revision" | "time">): void {
    this.local.publish(event);
  }
}
