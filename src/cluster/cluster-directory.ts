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
  Logger,
  NodeDrain,
  PoolOptions,
  ReleaseOptions,
  SessionDirectory,
  SessionInfo,
  SessionLogs,
  SubscribeOptions,
} from "../core/index.ts";
import { HerdError, isHerdError, newSessionId, validateSessionId } from "../core/index.ts";
import { resolvePoolOptions } from "../pool/index.ts";
import type { ClusterEvents, KnownRemote } from "./cluster-events.ts";
import type { ClusterStore, SessionRecord } from "./cluster-store.ts";
import type { ClusterWatch } from "./cluster-watch.ts";
import type { FenceWatchdog } from "./fence-watchdog.ts";
import type { LiveNodes } from "./live-nodes.ts";
import type { NodeLease } from "./node-lease.ts";
import type { PeerAuth } from "./peer-auth.ts";
import type { PeerClient } from "./peer-client.ts";
import { type NodeCapacity, placeAcquire } from "./placement.ts";
import {
  decodeSession,
  encodeSession,
  type NodeAddresses,
  type RemoteSession,
} from "./session-codec.ts";
import type { RecordKeys } from "./signed-record.ts";

/** Set while serving a node-to-node call: the calling node's name. */
export const viaPeer = new AsyncLocalStorage<string>();

const SUMMED = [
  "workersTotal",
  "workersIdle",
  "workersBusy",
  "workersStarting",
  "sessions",
  "queued",
  "min",
  "max",
] as const;

/** How long a caller waits for another node's pending claim to become a session. */
const PENDING_WAIT_MS = 120_000;

interface Claim {
  gen: string;
  workerPid?: number;
  workerId?: string;
}

export interface ClusterParts {
  store: ClusterStore;
  lease: NodeLease;
  events: ClusterEvents;
  watch: ClusterWatch;
  peers: PeerClient;
  auth: PeerAuth;
  keys: RecordKeys;
  nodes: LiveNodes;
  watchdog: FenceWatchdog;
  self: NodeAddresses;
  logger: Logger;
  /** While it drains, this node places no new session on itself (its record says so). */
  drain: NodeDrain;
}

export class ClusterDirectory implements SessionDirectory, ClusterRouting {
  /** Local sessions' claims (the generation this node holds each id at). */
  private readonly claims = new Map<string, Claim>();
  private observed: NodeCapacity[] = [];
  /** Acquires this node placed on itself and has not finished yet, per pool. */
  private readonly placing = new Map<string, number>();
  /**
   * Acquires sent to other nodes: a node's record counts them only from its next renewal on,
   * so until then they are subtracted here (else a burst would all pick the same node); and so
   * is every one still on its way (`done` unset), which a record renewed meanwhile may not show.
   */
  private sent: { node: string; pool: string; at: number; done?: boolean }[] = [];
  private parts!: ClusterParts;

  constructor(private readonly local: SessionDirectory) {}

  /** Second phase of construction: the parts need the directory's callbacks first. */
  attach(parts: ClusterParts): void {
    this.parts = parts;
  }

  get node(): string {
    return this.parts.self.node;
  }

  poolNames(): string[] {
    return this.local.poolNames();
  }

  poolOptions(pool: string): PoolOptions {
    if (this.local.poolNames().includes(pool)) return this.local.poolOptions(pool);
    // A pool only other nodes run: its sessions' options are their owner's business; this
    // node only forwards (no data_timeout of its own).
    if ([...this.parts.events.remote.values()].some((r) => r.info.pool === pool)) {
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
    if (
      runsHere &&
      !this.parts.drain.draining &&
      (this.localCapacity(pool).pools[pool]?.free ?? 0) > 0
    ) {
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
    // From here to the reservation nothing awaits: concurrent acquires (a burst) each see the
    // slots the others took, so they spread over the nodes instead of all picking one.
    const here = runsHere ? this.localCapacity(pool) : undefined;
    const where = placeAcquire(pool, here, this.placeable(records, pool));
    if (where === undefined || where.node === this.node) return this.placeHere(pool, id, opts);
    const sent: (typeof this.sent)[number] = { node: where.node, pool, at: Date.now() };
    this.sent.push(sent);
    const remote = await this.parts.peers.acquire(where, pool, id, opts).finally(() => {
      sent.done = true;
    });
    return this.remoteInfo(this.parts.events.learn(remote));
  }

  /** acquireHere, counted as in flight so concurrent placements see the slot taken. */
  private async placeHere(pool: string, id: string, opts: AcquireOptions): Promise<SessionInfo> {
    this.placing.set(pool, (this.placing.get(pool) ?? 0) + 1);
    try {
      return await this.acquireHere(pool, id, opts);
    } finally {
      this.placing.set(pool, (this.placing.get(pool) ?? 1) - 1);
    }
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
    const remote = await this.routed(this.genuine(record, id));
    if (viaPeer.getStore() !== undefined) return this.remoteInfo(this.parts.events.learn(remote));
    return this.remoteInfo(this.parts.events.learn(await this.reacquire(record, remote, opts)));
  }

  /**
   * Acquiring a live session is activity on it: the owner's acquire restarts its idle clock
   * (ttl), exactly as an acquire on the owner would, and answers with its current state. An
   * owner that does not answer within a lease (frozen, cut off: about to be fenced) gets no
   * say: the answer is Redis's record, as routing would use it anyway.
   */
  private async reacquire(
    record: SessionRecord,
    remote: RemoteSession,
    opts: AcquireOptions,
  ): Promise<RemoteSession> {
    const owner = { node: record.node, control: remote.control, data: remote.data };
    const limit = AbortSignal.timeout(this.parts.lease.leaseMs);
    const signal = opts.signal ? AbortSignal.any([opts.signal, limit]) : limit;
    try {
      return await this.parts.peers.acquire(owner, record.pool, remote.info.id, {
        ...opts,
        signal,
      });
    } catch (err) {
      const unanswered =
        isHerdError(err) && (err.code === "unavailable" || err.code === "deadline_exceeded");
      if (opts.signal?.aborted || !unanswered) throw err;
      this.parts.logger.debug(
        { err: (err as Error).message, session: remote.info.id, node: record.node },
        "cluster: the owner did not answer a re-acquire; answering from Redis",
      );
      return remote;
    }
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
      const claim = await store.claim(this.node, pool, id);
      if (claim.kind === "dead") {
        throw new HerdError(
          "unavailable",
          "cluster: this node's lease has lapsed in Redis; it rejoins within one renewal",
        );
      }
      if (claim.kind === "taken") {
        const found = await this.fromRecord(claim.record, pool, id, opts);
        if (found) return found;
        if (Date.now() > deadline) {
          throw new HerdError("deadline_exceeded", `session ${id}: its owner never started it`);
        }
        await sleep(20);
        continue;
      }
      this.claims.set(id, { gen: claim.gen });
      let session: SessionInfo;
      try {
        session = await this.local.acquire(pool, id, opts);
      } catch (err) {
        this.claims.delete(id);
        await store.drop(this.node, claim.gen, id).catch(() => {});
        throw err;
      }
      const held = this.claims.get(id);
      if (held?.gen === claim.gen) {
        held.workerPid = session.workerPid;
        held.workerId = session.workerId;
        this.parts.watchdog.add(session.workerPid);
      }
      const ok = await store
        .commit(this.node, claim.gen, id, encodeSession(session, this.parts.self, this.parts.keys))
        .catch(() => false);
      if (!ok) {
        await this.local
          .release(id, { kill: true, end: { kind: "lost", reason: "fenced: lost the claim" } })
          .catch(() => {});
        throw new HerdError(
          "unavailable",
          `cluster: session ${id} could not be published in Redis ${store.where()}; its worker was stopped`,
        );
      }
      return this.mine(session);
    }
  }

  /**
   * Called in order for every local event before it is appended: a local session that ended
   * gives up its claim. Returns the generation to drop, which the append of this very event
   * does in the same script (one round trip; the record goes with the end event, never apart).
   * If that append fails, the record stays until Redis is back and this node's lease lapses or
   * it rebuilds the registry.
   */
  onLocalEvent(event: HerdEvent): string | undefined {
    if (
      event.sessionId === undefined ||
      (event.type !== "session_released" &&
        event.type !== "session_expired" &&
        event.type !== "session_lost")
    ) {
      return undefined;
    }
    const claim = this.claims.get(event.sessionId);
    const workerId = event.workerId ?? event.session?.workerId;
    if (!claim || (claim.workerId !== undefined && claim.workerId !== workerId)) return undefined;
    this.claims.delete(event.sessionId);
    if (claim.workerPid !== undefined) this.parts.watchdog.remove(claim.workerPid);
    return claim.gen;
  }

  /** Fencing: kill every local session (they may run on another node next). */
  async fenceAll(reason: string): Promise<void> {
    await Promise.allSettled(
      this.local.sessions().map((s) =>
        this.local.release(s.id, {
          kill: true,
          end: { kind: "lost", reason: `fenced: ${reason}` },
        }),
      ),
    );
  }

  /** Redis lost its data: register the live local sessions again (a conflict kills ours). */
  async rebuild(): Promise<void> {
    for (const s of this.local.sessions()) {
      const claim = await this.parts.store
        .claim(this.node, s.pool, s.id, encodeSession(s, this.parts.self, this.parts.keys))
        .catch(() => undefined);
      if (claim?.kind === "claimed") {
        this.claims.set(s.id, { gen: claim.gen, workerPid: s.workerPid, workerId: s.workerId });
      } else if (claim?.kind === "taken" && claim.record.node !== this.node) {
        await this.local
          .release(s.id, { kill: true, end: { kind: "lost", reason: "fenced: owned elsewhere" } })
          .catch(() => {});
      }
    }
  }

  /** This node's record for placement: its addresses and free capacity per pool, signed. */
  record(): string {
    return this.parts.nodes.sign(this.capacity());
  }

  private capacity(): NodeCapacity {
    const pools: Record<string, NodeCapacity["pools"][string]> = {};
    const stats = this.local.stats().pools;
    for (const p of stats) {
      pools[p.name] = {
        free: Math.max(0, p.max - p.sessions - p.workersStarting),
        queued: p.queued,
        max: p.max,
      };
    }
    return {
      ...this.parts.self,
      pools,
      stats,
      renewedAt: Date.now(),
      leaseMs: this.parts.lease.leaseMs,
      ...(this.parts.drain.draining && { draining: true }),
    };
  }

  /** The live nodes' records, as last read (for GetStats and routing); forged ones dropped. */
  observe(records: string[]): void {
    this.observed = this.parts.nodes.observe(records);
  }

  private localCapacity(pool: string): NodeCapacity {
    const rec = this.capacity();
    const cap = rec.pools[pool];
    if (cap) cap.free = Math.max(0, cap.free - (this.placing.get(pool) ?? 0));
    return rec;
  }

  /** The nodes' records, less the acquires sent to each since its record was written. */
  private placeable(records: string[], pool: string): NodeCapacity[] {
    const horizon = Date.now() - 4 * this.parts.lease.leaseMs;
    this.sent = this.sent.filter((s) => s.at > horizon);
    // Unsigned, forged or stale records (and nodes of another herd version) are not placeable.
    const out: NodeCapacity[] = [];
    for (const rec of this.parts.nodes.verify(records)) {
      // Our own record may predate our drain.
      if (rec.node === this.node && this.parts.drain.draining) continue;
      const cap = rec.pools[pool];
      if (cap) {
        const since = this.sent.filter(
          (s) => s.node === rec.node && s.pool === pool && (s.at >= rec.renewedAt || !s.done),
        ).length;
        cap.free = Math.max(0, cap.free - since);
      }
      out.push(rec);
    }
    return out;
  }

  private mine(s: SessionInfo): SessionInfo {
    return { ...s, node: this.node };
  }

  /** A ready record's session when the cluster's secret signed it for this id and node. */
  private genuine(record: SessionRecord, id: string): RemoteSession {
    const remote = decodeSession(record.info, this.parts.keys);
    if (!remote || remote.info.node !== record.node || remote.info.id !== id) {
      throw new HerdError(
        "unavailable",
        `cluster: the record of this session in Redis ${this.parts.store.where()} is not signed with the cluster secret; ignored`,
      );
    }
    return remote;
  }

  /** `r` with its owner's addresses from the owner's signed live record, if it is live. */
  private route<T extends RemoteSession>(r: T): T | undefined {
    const owner = this.parts.nodes.get(r.info.node);
    return owner && { ...r, data: owner.data, control: owner.control };
  }

  /** route, reading the live records again if the owner is not known yet; else unavailable. */
  private async routed<T extends RemoteSession>(r: T): Promise<T> {
    const owner = await this.parts.nodes.resolve(r.info.node);
    if (!owner) {
      throw new HerdError(
        "unavailable",
        `cluster: session ${r.info.id}'s owner ${r.info.node} is not a live node of this cluster (no valid signed record)`,
      );
    }
    return { ...r, data: owner.data, control: owner.control };
  }

  /** `r` must be routed (its addresses from its owner's live record). */
  private remoteInfo(r: KnownRemote): SessionInfo {
    return {
      ...r.info,
      workerAddress: r.data,
      peer: { credential: () => this.parts.auth.connection(r.info.node ?? "") },
    };
  }

  lookup(sessionId: string): SessionInfo | undefined {
    const here = this.local.lookup(sessionId);
    if (here) {
      if (this.parts.lease.valid()) return this.mine(here);
      this.parts.lease.lapse();
      return undefined;
    }
    const known = this.parts.events.remote.get(sessionId);
    const remote = known && this.route(known);
    return remote && this.remoteInfo(remote);
  }

  async find(sessionId: string): Promise<SessionInfo | undefined> {
    const record = await this.parts.store.session(sessionId);
    if (record === undefined || record.state !== "ready" || record.node === this.node) {
      return undefined;
    }
    const remote = decodeSession(record.info, this.parts.keys);
    if (!remote || remote.info.node !== record.node || remote.info.id !== sessionId) {
      return undefined;
    }
    const owner = await this.parts.nodes.resolve(record.node);
    const known = this.parts.events.learn(remote);
    return owner && this.remoteInfo({ ...known, data: owner.data, control: owner.control });
  }

  verifyPeer(credential: string, connection: object): boolean {
    return this.parts.auth.verifyConnection(credential, connection) !== undefined;
  }

  async release(sessionId: string, opts: ReleaseOptions = {}): Promise<SessionInfo> {
    if (this.local.lookup(sessionId)) return this.mine(await this.local.release(sessionId, opts));
    if (viaPeer.getStore() === undefined) {
      const record = await this.parts.store.session(sessionId);
      if (record && record.node !== this.node && record.state === "ready") {
        const remote = await this.routed(this.genuine(record, sessionId));
        const info = await this.parts.peers.release(remote, opts.kill);
        this.parts.events.forget(sessionId, remote.info.node);
        return info;
      }
    }
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

  /** A session's worker output is read on the node its worker runs on. */
  logs(sessionId: string): SessionLogs {
    if (this.local.logs && this.local.lookup(sessionId)) return this.local.logs(sessionId);
    const owner = this.parts.events.remote.get(sessionId)?.info.node;
    throw new HerdError(
      "not_found",
      owner
        ? `session ${JSON.stringify(sessionId)} runs on node ${owner}: read its logs there`
        : `no live session ${JSON.stringify(sessionId)}`,
    );
  }

  lease(sessionId: string, kind: LeaseKind): Lease {
    if (this.local.lookup(sessionId)) return this.local.lease(sessionId, kind);
    const known = this.parts.events.remote.get(sessionId);
    const remote = known && this.route(known);
    if (!remote) throw new HerdError("not_found", `no live session ${JSON.stringify(sessionId)}`);
    if (kind === "hold") {
      // Held here, kept busy on the owner by a hold of our own there.
      const held = this.parts.peers.hold(remote);
      const ended = AbortSignal.any([held.ended, remote.ended.signal]);
      return { sessionId, ended, close: () => held.close() };
    }
    // The owner counts the forwarded connection as its own lease; here it only has to end
    // when the session does.
    return { sessionId, ended: remote.ended.signal, close() {} };
  }

  sessions(pool?: string): SessionInfo[] {
    const here = this.local.poolNames().includes(pool ?? "") || pool === undefined;
    const local = here ? this.local.sessions(pool).map((s) => this.mine(s)) : [];
    const remote = [...this.parts.events.remote.values()]
      .filter((r) => pool === undefined || r.info.pool === pool)
      .flatMap((r) => {
        const routed = this.route(r);
        return routed ? [this.remoteInfo(routed)] : [];
      });
    return [...local, ...remote];
  }

  stats(pool?: string): HerdStats {
    const runsHere = pool === undefined || this.local.poolNames().includes(pool);
    const local = runsHere ? this.local.stats(pool) : { ...this.local.stats(), pools: [] };
    const nodes = this.observed.map((r) => ({
      node: r.node,
      dataAddress: r.data,
      controlAddress: r.control,
      pools: r.stats.filter((p) => pool === undefined || p.name === pool),
      renewedAt: new Date(r.renewedAt),
      leaseMs: r.leaseMs,
      ...(r.draining === true && { draining: true }),
    }));
    const totals = new Map<string, HerdStats["pools"][number]>();
    for (const p of nodes.flatMap((n) => n.pools)) {
      const t = totals.get(p.name);
      if (!t) totals.set(p.name, { ...p });
      else for (const k of SUMMED) t[k] += p[k];
    }
    return { ...local, cluster: { nodes, pools: [...totals.values()] } };
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
