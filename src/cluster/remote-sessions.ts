// The sessions other nodes own, as this node routes to them: known from the event-fed cache
// (cluster-events.ts) on the data plane's hot path, or read from Redis; each answered with its
// owner's data-plane address as `workerAddress`, its `node`, and `peer`: the credential of the
// one hop this node forwards it over.
//
// Invariant: nothing read from Redis is trusted. A session record counts only when the cluster's
// secret signed it for this id and its owner (session-codec.ts), and the owner's addresses come
// from the owner's signed live record (live-nodes.ts), never from the session record, so a
// writer of Redis without the secret cannot redirect traffic. A session whose owner is not a
// live node is not routed at all.
//
// Concurrency: single-threaded. What a Redis read or a forwarded call learns goes into the same
// cache the event reader updates (`learn`, `forget`: the newest word about an id wins).

import type {
  AcquireOptions,
  Lease,
  LeaseKind,
  Logger,
  ReleaseOptions,
  SessionInfo,
} from "../core/index.ts";
import { HerdError, isHerdError } from "../core/index.ts";
import type { ClusterEvents, KnownRemote } from "./cluster-events.ts";
import type { LiveNodes } from "./live-nodes.ts";
import type { PeerAuth } from "./peer-auth.ts";
import type { PeerClient } from "./peer-client.ts";
import type { RedisSessions, SessionRecord } from "./redis-sessions.ts";
import { decodeSession, type NodeAddresses, type RemoteSession } from "./session-codec.ts";
import type { RecordKeys } from "./signed-record.ts";

export interface RemoteSessionsDeps {
  /** This node's name: a record naming it is no remote session. */
  node: string;
  store: RedisSessions;
  events: ClusterEvents;
  nodes: LiveNodes;
  peers: PeerClient;
  auth: PeerAuth;
  keys: RecordKeys;
  /** How long a re-acquire waits for a silent owner before answering from Redis. */
  leaseMs: number;
  logger: Logger;
}

export class RemoteSessions {
  constructor(private readonly d: RemoteSessionsDeps) {}

  /** The known remote session `id`, routed; undefined when unknown or its owner is not live. */
  get(id: string): SessionInfo | undefined {
    const known = this.d.events.remote.get(id);
    const remote = known && this.route(known);
    return remote && this.info(remote);
  }

  /** Whether `session` (as get answered it) still routes to its owner: live, same address. */
  routes(session: SessionInfo): boolean {
    const owner = this.d.nodes.get(session.node);
    return owner !== undefined && owner.data === session.workerAddress;
  }

  /** Whether some known remote session is of `pool`. */
  inPool(pool: string): boolean {
    for (const r of this.d.events.remote.values()) if (r.info.pool === pool) return true;
    return false;
  }

  /** The known remote sessions (of `pool`, if given) whose owner is live. */
  list(pool?: string): SessionInfo[] {
    return [...this.d.events.remote.values()]
      .filter((r) => pool === undefined || r.info.pool === pool)
      .flatMap((r) => {
        const routed = this.route(r);
        return routed ? [this.info(routed)] : [];
      });
  }

  /** A session another node runs, read from Redis: genuine, ready and with a live owner. */
  async find(id: string): Promise<SessionInfo | undefined> {
    const record = await this.d.store.session(id);
    if (record === undefined || record.state !== "ready" || record.node === this.d.node) {
      return undefined;
    }
    const remote = decodeSession(record.info, this.d.keys);
    if (!remote || remote.info.node !== record.node || remote.info.id !== id) {
      return undefined;
    }
    const owner = await this.d.nodes.resolve(record.node);
    const known = this.d.events.learn(remote);
    return owner && this.info({ ...known, data: owner.data, control: owner.control });
  }

  /** A lease on a known remote session; not_found when there is none. */
  lease(sessionId: string, kind: LeaseKind): Lease {
    const known = this.d.events.remote.get(sessionId);
    const remote = known && this.route(known);
    if (!remote) throw new HerdError("not_found", `no live session ${JSON.stringify(sessionId)}`);
    if (kind === "hold") {
      // Held here, kept busy on the owner by a hold of our own there.
      const held = this.d.peers.hold(remote);
      const ended = AbortSignal.any([held.ended, remote.ended.signal]);
      return { sessionId, ended, close: () => held.close() };
    }
    // The owner counts the forwarded connection as its own lease; here it only has to end
    // when the session does.
    return { sessionId, ended: remote.ended.signal, close() {} };
  }

  /**
   * The session of another node's ready `record` for `id`, to an acquire. `forwarded` (the
   * acquire came from a peer): as Redis has it; else re-acquired on its owner.
   */
  async acquired(
    record: SessionRecord,
    id: string,
    opts: AcquireOptions,
    forwarded: boolean,
  ): Promise<SessionInfo> {
    const remote = await this.routed(this.genuine(record, id));
    if (forwarded) return this.info(this.d.events.learn(remote));
    return this.info(this.d.events.learn(await this.reacquire(record, remote, opts)));
  }

  /** A new session placed on `owner`: its acquire, forwarded there. */
  async acquireOn(
    owner: NodeAddresses,
    pool: string,
    id: string,
    opts: AcquireOptions,
  ): Promise<SessionInfo> {
    const remote = await this.d.peers.acquire(owner, pool, id, opts);
    return this.info(this.d.events.learn(remote));
  }

  /** Releases `id` on the node that runs it; undefined when Redis names no such node. */
  async release(id: string, opts: ReleaseOptions): Promise<SessionInfo | undefined> {
    const record = await this.d.store.session(id);
    if (!record || record.node === this.d.node || record.state !== "ready") return undefined;
    const remote = await this.routed(this.genuine(record, id));
    const info = await this.d.peers.release(remote, opts.kill);
    this.d.events.forget(id, remote.info.node);
    return info;
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
    const limit = AbortSignal.timeout(this.d.leaseMs);
    const signal = opts.signal ? AbortSignal.any([opts.signal, limit]) : limit;
    try {
      return await this.d.peers.acquire(owner, record.pool, remote.info.id, {
        ...opts,
        signal,
      });
    } catch (err) {
      const unanswered =
        isHerdError(err) && (err.code === "unavailable" || err.code === "deadline_exceeded");
      if (opts.signal?.aborted || !unanswered) throw err;
      this.d.logger.debug(
        { err: (err as Error).message, session: remote.info.id, node: record.node },
        "cluster: the owner did not answer a re-acquire; answering from Redis",
      );
      return remote;
    }
  }

  /** A ready record's session when the cluster's secret signed it for this id and node. */
  private genuine(record: SessionRecord, id: string): RemoteSession {
    const remote = decodeSession(record.info, this.d.keys);
    if (!remote || remote.info.node !== record.node || remote.info.id !== id) {
      throw new HerdError(
        "unavailable",
        `cluster: the record of this session in Redis ${this.d.store.where()} is not signed with the cluster secret; ignored`,
      );
    }
    return remote;
  }

  /** `r` with its owner's addresses from the owner's signed live record, if it is live. */
  private route<T extends RemoteSession>(r: T): T | undefined {
    const owner = this.d.nodes.get(r.info.node);
    return owner && { ...r, data: owner.data, control: owner.control };
  }

  /** route, reading the live records again if the owner is not known yet; else unavailable. */
  private async routed<T extends RemoteSession>(r: T): Promise<T> {
    const owner = await this.d.nodes.resolve(r.info.node);
    if (!owner) {
      throw new HerdError(
        "unavailable",
        `cluster: session ${r.info.id}'s owner ${r.info.node} is not a live node of this cluster (no valid signed record)`,
      );
    }
    return { ...r, data: owner.data, control: owner.control };
  }

  /**
   * `r` must be routed (its addresses from its owner's live record); a relay hop to it only if
   * that record says the owner accepts them.
   */
  private info(r: KnownRemote): SessionInfo {
    const node = r.info.node ?? "";
    const relays = this.d.nodes.get(node)?.relay === true;
    return {
      ...r.info,
      workerAddress: r.data,
      peer: {
        credential: () => this.d.auth.connection(node),
        ...(relays && { relay: (client: string) => this.d.auth.relay(node, client) }),
      },
    };
  }
}
