// The SessionDirectory of a cluster node: this node's Herd, plus Redis for everything that
// must hold cluster-wide. The planes use it exactly as they use a Herd. It decides, per call,
// whether the session is this node's (the Herd answers, the result labelled with this node) or
// another's (remote-sessions.ts), and hands the rest to its parts: acquires to
// cluster-acquire.ts, GetStats' cluster rows to cluster-stats.ts, WatchSessions to
// cluster-watch.ts.
//
// Invariant: a node serves a local session only while its lease is valid (node-lease.ts): a
// lookup that finds the lease lapsed fences this node at once and answers "unknown", so a node
// the cluster declared dead never serves an id someone else owns. A call that arrived from
// another node (via-peer.ts) is served here or refused, never forwarded again. Every session
// it answers with names its node.
//
// Concurrency: no state of its own but a memo (the options of each pool only other nodes run,
// the same for every call); each part states its own rules.

import type {
  AcquireOptions,
  ClusterRouting,
  EventSubscription,
  HerdEvent,
  HerdStats,
  Lease,
  LeaseKind,
  PoolOptions,
  ReleaseOptions,
  SessionDirectory,
  SessionInfo,
  SessionLogSource,
  SessionLogs,
  SubscribeOptions,
} from "../core/index.ts";
import { HerdError, newSessionId, validateSessionId } from "../core/index.ts";
import { resolvePoolOptions } from "../pool/index.ts";
import type { CapacityLedger } from "./capacity-ledger.ts";
import type { ClusterAcquire } from "./cluster-acquire.ts";
import { clusterStats } from "./cluster-stats.ts";
import type { ClusterWatch } from "./cluster-watch.ts";
import type { NodeLease } from "./node-lease.ts";
import type { PeerAuth } from "./peer-auth.ts";
import type { RemoteSessions } from "./remote-sessions.ts";
import { forwarded } from "./via-peer.ts";

export interface ClusterParts {
  /** This node's Herd. */
  local: SessionDirectory & SessionLogSource;
  /** This node's name. */
  node: string;
  acquirer: ClusterAcquire;
  remotes: RemoteSessions;
  lease: NodeLease;
  /** The live nodes' records as last read, for GetStats. */
  capacity: CapacityLedger;
  watch: ClusterWatch;
  auth: PeerAuth;
}

export class ClusterDirectory implements SessionDirectory, ClusterRouting, SessionLogSource {
  private readonly local: SessionDirectory & SessionLogSource;
  readonly node: string;
  /** Options of pools only other nodes run, resolved once (the data plane asks per request). */
  readonly #remotePools = new Map<string, PoolOptions>();

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
      let options = this.#remotePools.get(pool);
      if (options === undefined) {
        options = resolvePoolOptions({ name: pool, command: ["(remote)"] });
        this.#remotePools.set(pool, options);
      }
      return options;
    }
    return this.local.poolOptions(pool); // throws not_found
  }

  async acquire(
    pool: string,
    sessionId: string | undefined,
    opts: AcquireOptions = {},
  ): Promise<SessionInfo> {
    const id =
      sessionId === undefined || sessionId === "" ? newSessionId() : validateSessionId(sessionId);
    const got = await this.parts.acquirer.acquire(pool, id, opts);
    return got.kind === "local" ? this.mine(got.session) : got.session;
  }

  private mine(s: SessionInfo): SessionInfo {
    return { ...s, node: this.node };
  }

  lookup(sessionId: string): SessionInfo | undefined {
    const here = this.local.lookup(sessionId);
    if (here) return this.serving() ? this.mine(here) : undefined;
    return this.parts.remotes.get(sessionId);
  }

  current(session: SessionInfo): boolean {
    return session.peer === undefined ? this.serving() : this.parts.remotes.routes(session);
  }

  /** Whether this node may serve its own sessions: its lease is valid; else it is fenced now. */
  private serving(): boolean {
    if (this.parts.lease.valid()) return true;
    this.parts.lease.lapse();
    return false;
  }

  find(sessionId: string): Promise<SessionInfo | undefined> {
    return this.parts.remotes.find(sessionId);
  }

  verifyPeer(credential: string, connection: object): boolean {
    return this.parts.auth.verifyConnection(credential, connection) !== undefined;
  }

  verifyRelay(credential: string): { node: string; client: string } | { error: string } {
    return this.parts.auth.verifyRelay(credential);
  }

  async release(sessionId: string, opts: ReleaseOptions = {}): Promise<SessionInfo> {
    if (this.local.lookup(sessionId)) return this.mine(await this.local.release(sessionId, opts));
    const released = forwarded() ? undefined : await this.parts.remotes.release(sessionId, opts);
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

  /** A session's worker output is read on the node its worker runs on. */
  logs(sessionId: string): SessionLogs {
    if (this.local.lookup(sessionId)) return this.local.logs(sessionId);
    const owner = this.parts.remotes.get(sessionId)?.node;
    throw new HerdError(
      "not_found",
      owner
        ? `session ${JSON.stringify(sessionId)} runs on node ${owner}: read its logs there`
        : `no live session ${JSON.stringify(sessionId)}`,
    );
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
