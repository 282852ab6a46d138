// An acquire in a cluster: where the session is or goes, and getting it there. A live id is
// acquired on the node that runs it; a new one is placed here when this node has room, else
// on the node the live records say has the most (capacity-ledger.ts, placement.ts), and
// started under a claim (local-claims.ts) by the node that runs it.
//
// Invariant: a call that came from another node (via-peer.ts) is served here or refused,
// never forwarded again; a draining node starts no session. Whoever loses an id's claim waits
// for the winner's session (up to PENDING_WAIT_MS) and answers with it.
//
// Concurrency: concurrent acquires of one id here share the Herd's singleflight; on different
// nodes, Redis's claim script picks one winner. Between reading the nodes' records and
// reserving a slot nothing awaits (capacity-ledger.ts).

import { setTimeout as sleep } from "node:timers/promises";
import type { AcquireOptions, NodeDrain, SessionDirectory, SessionInfo } from "../core/index.ts";
import { HerdError } from "../core/index.ts";
import type { CapacityLedger } from "./capacity-ledger.ts";
import type { LocalClaims } from "./local-claims.ts";
import type { NodeLease } from "./node-lease.ts";
import type { RedisSessions, SessionRecord } from "./redis-sessions.ts";
import type { RemoteSessions } from "./remote-sessions.ts";
import { forwarded } from "./via-peer.ts";

/** How long a caller waits for another node's pending claim to become a session. */
const PENDING_WAIT_MS = 120_000;

/** An acquire's session, and whether this node runs it (the caller labels those). */
export type Acquired =
  | { kind: "local"; session: SessionInfo }
  | { kind: "remote"; session: SessionInfo };

export interface ClusterAcquireDeps {
  /** This node's Herd. */
  local: SessionDirectory;
  /** This node's name. */
  node: string;
  store: RedisSessions;
  lease: NodeLease;
  capacity: CapacityLedger;
  claims: LocalClaims;
  remotes: RemoteSessions;
  /** While it drains, this node places no new session on itself. */
  drain: NodeDrain;
}

export class ClusterAcquire {
  constructor(private readonly d: ClusterAcquireDeps) {}

  /** Acquires `id` (valid) of `pool` wherever it is or goes. */
  async acquire(pool: string, id: string, opts: AcquireOptions): Promise<Acquired> {
    const { local, lease, capacity } = this.d;
    // Live here: the local acquire restarts its idle clock (and checks the pool), as on one node.
    if (local.lookup(id) && lease.valid()) return here(await local.acquire(pool, id, opts));
    if (!lease.valid()) {
      throw new HerdError(
        "unavailable",
        `cluster: this node cannot renew its lease in Redis ${this.d.store.where()}; cluster-wide acquires fail until Redis is back`,
      );
    }
    if (forwarded()) return this.acquireHere(pool, id, opts);
    const runsHere = local.poolNames().includes(pool);
    // Room here: the claim itself tells whether another node has the id (one round trip less).
    if (runsHere && !this.d.drain.draining && capacity.startsHere(pool)) {
      return this.placeHere(pool, id, opts);
    }
    const deadline = Date.now() + PENDING_WAIT_MS;
    let records: string[];
    for (;;) {
      // One round trip: the id's record if some node has it, else every live node's record.
      const found = await this.d.store.locate(id);
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
    // A node whose record said it had room may refuse (it began draining since, or cannot be
    // reached): the session goes to the next one, as it would have a moment later. Its claim
    // in Redis keeps one owner whatever a refused call did.
    const refused = new Set<string>();
    for (;;) {
      // From here to the reservation nothing awaits (capacity-ledger.ts).
      const where = capacity.choose(pool, runsHere, records, refused);
      if (where === undefined || where.node === this.d.node) return this.placeHere(pool, id, opts);
      try {
        return remote(
          await capacity.sending(where.node, pool, () =>
            this.d.remotes.acquireOn(where, pool, id, opts),
          ),
        );
      } catch (err) {
        if (!(err instanceof HerdError) || err.code !== "unavailable") throw err;
        if (records.length <= refused.size + 1) throw err;
        refused.add(where.node);
      }
    }
  }

  /** acquireHere, counted as in flight so concurrent placements see the slot taken. */
  private placeHere(pool: string, id: string, opts: AcquireOptions): Promise<Acquired> {
    return this.d.capacity.placingHere(pool, (handed) => this.acquireHere(pool, id, opts, handed));
  }

  /** A session some node holds in Redis: ours, ready elsewhere, or (undefined) still pending. */
  private async fromRecord(
    record: SessionRecord,
    pool: string,
    id: string,
    opts: AcquireOptions,
  ): Promise<Acquired | undefined> {
    if (record.pool !== pool) {
      throw new HerdError(
        "failed_precondition",
        `session is live in pool ${JSON.stringify(record.pool)}, not ${JSON.stringify(pool)}`,
      );
    }
    if (record.node === this.d.node) {
      // Ours: joins the local singleflight (or finds the session it started).
      return here(await this.d.local.acquire(pool, id, opts));
    }
    if (record.state !== "ready") return undefined;
    return remote(await this.d.remotes.acquired(record, id, opts, forwarded()));
  }

  /**
   * Place the session on this node: win the claim, start the worker, publish it. `handed`: the
   * local pool has the acquire (capacity-ledger.ts).
   */
  private async acquireHere(
    pool: string,
    id: string,
    opts: AcquireOptions,
    handed?: () => void,
  ): Promise<Acquired> {
    const deadline = Date.now() + PENDING_WAIT_MS;
    for (;;) {
      if (this.d.drain.draining) return this.notHere(pool, id, opts, handed);
      let started: Awaited<ReturnType<LocalClaims["start"]>>;
      try {
        started = await this.d.claims.start(pool, id, opts, handed);
      } catch (err) {
        // The drain began while the claim was on its way (the pool refused it).
        if (this.d.drain.draining) return this.notHere(pool, id, opts, handed);
        throw err;
      }
      if (started.kind === "started") return here(started.session);
      const found = await this.fromRecord(started.record, pool, id, opts);
      if (found) return found;
      if (Date.now() > deadline) {
        throw new HerdError("deadline_exceeded", `session ${id}: its owner never started it`);
      }
      await sleep(20);
    }
  }

  /**
   * This node began draining while it placed the session here. A client's own acquire goes to
   * another node (as it would have, had it come a moment later); one another node sent here
   * from a record older than the drain is refused, so that node tries another.
   */
  private async notHere(
    pool: string,
    id: string,
    opts: AcquireOptions,
    handed?: () => void,
  ): Promise<Acquired> {
    const found = await this.d.store.session(id);
    if (found) {
      const got = await this.fromRecord(found, pool, id, opts);
      if (got) return got;
    }
    if (!forwarded()) {
      handed?.();
      return this.acquire(pool, id, opts);
    }
    throw new HerdError(
      "unavailable",
      `cluster: node ${this.d.node} is draining: it takes no new sessions`,
    );
  }
}

function here(session: SessionInfo): Acquired {
  return { kind: "local", session };
}

function remote(session: SessionInfo): Acquired {
  return { kind: "remote", session };
}
