// What this node knows of the cluster's capacity, for placing new sessions: its own record
// (addresses and free slots per pool, signed, written by each lease renewal), the live nodes'
// records as last read, and the placements in flight that no record shows yet.
//
// Invariant: a slot is counted taken while an acquire is on its way to it. One this node placed
// on itself holds a slot here until it finishes (from then on the pool's own figures count it);
// one sent to another node holds a slot of that node until the acquire finished and the node's
// record was renewed after it was sent. A draining node's record says so, and this node, while
// draining, is no placement of its own, whatever its last record says.
//
// Concurrency: single-threaded. `choose` and the reservation that follows it (`placingHere`,
// `sending`) run with nothing awaited in between, so each of a burst of acquires sees the slots
// the others took, and they spread over the nodes instead of all picking one.

import type { NodeDrain, SessionDirectory } from "../core/index.ts";
import type { LiveNodes } from "./live-nodes.ts";
import { idleOn, type NodeCapacity, placeAcquire } from "./placement.ts";
import type { NodeAddresses } from "./session-codec.ts";

/** An acquire sent to another node; `done` once it has been answered (or failed). */
interface Sent {
  node: string;
  pool: string;
  at: number;
  done?: boolean;
}

export class CapacityLedger {
  private observedNodes: NodeCapacity[] = [];
  /** Acquires this node placed on itself and has not finished yet, per pool. */
  private readonly placing = new Map<string, number>();
  /** Acquires sent to other nodes, kept for four leases (a record long renewed shows them). */
  private sent: Sent[] = [];

  constructor(
    private readonly local: Pick<SessionDirectory, "stats">,
    private readonly self: NodeAddresses,
    private readonly nodes: LiveNodes,
    private readonly leaseMs: number,
    /** While it drains, this node places no new session on itself (its record says so). */
    private readonly drain: NodeDrain,
  ) {}

  /** This node's record for its lease key: its addresses and free capacity per pool, signed. */
  record(): string {
    return this.nodes.sign(this.capacity());
  }

  /** The live nodes' records, as last read (for GetStats and routing); forged ones dropped. */
  observe(records: string[]): void {
    this.observedNodes = this.nodes.observe(records);
  }

  /** The live nodes' records as last observed. */
  observed(): readonly NodeCapacity[] {
    return this.observedNodes;
  }

  /**
   * Whether a new session of `pool` may skip placement and start here: a free slot, and either
   * an idle worker here or none known on another node (as their records were last read) —
   * placement prefers a warm worker elsewhere to a cold start here (placement.ts).
   */
  startsHere(pool: string): boolean {
    const here = this.here(pool);
    if ((here.pools[pool]?.free ?? 0) === 0) return false;
    if (idleOn(here, pool) > 0) return true;
    return !this.observedNodes.some(
      (n) =>
        n.node !== this.self.node &&
        !n.draining &&
        (n.pools[pool]?.free ?? 0) > 0 &&
        idleOn(n, pool) > 0,
    );
  }

  /**
   * Where a new session of `pool` goes (placement.ts), from the live nodes' `records` as just
   * read, less what is in flight; undefined or this node's record: here. Reserve the slot
   * before awaiting anything.
   */
  choose(
    pool: string,
    runsHere: boolean,
    records: string[],
    refused: ReadonlySet<string> = new Set(),
  ): NodeCapacity | undefined {
    const here = runsHere ? this.here(pool) : undefined;
    const others = this.placeable(records, pool).filter((rec) => !refused.has(rec.node));
    return placeAcquire(pool, here, others);
  }

  /**
   * Runs an acquire placed on this node, its slot counted taken until the acquire calls
   * `handed` (the local pool has it: from then on the pool's own figures, a worker starting or
   * a session, count it; counting both sent half of a burst on max elsewhere) or finishes.
   */
  async placingHere<T>(pool: string, acquire: (handed: () => void) => Promise<T>): Promise<T> {
    this.placing.set(pool, (this.placing.get(pool) ?? 0) + 1);
    let counted = true;
    const handed = () => {
      if (!counted) return;
      counted = false;
      this.placing.set(pool, (this.placing.get(pool) ?? 1) - 1);
    };
    try {
      return await acquire(handed);
    } finally {
      handed();
    }
  }

  /** Runs an acquire sent to `node`, counted against its record until that shows it. */
  async sending<T>(node: string, pool: string, acquire: () => Promise<T>): Promise<T> {
    const sent: Sent = { node, pool, at: Date.now() };
    this.sent.push(sent);
    try {
      return await acquire();
    } finally {
      sent.done = true;
    }
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
      ...this.self,
      pools,
      stats,
      renewedAt: Date.now(),
      leaseMs: this.leaseMs,
      ...(this.drain.draining && { draining: true }),
      relay: true,
    };
  }

  /** This node's record, less the acquires placed here still in flight. */
  private here(pool: string): NodeCapacity {
    const rec = this.capacity();
    const cap = rec.pools[pool];
    if (cap) cap.free = Math.max(0, cap.free - (this.placing.get(pool) ?? 0));
    return rec;
  }

  /** The nodes' records, less the acquires sent to each since its record was written. */
  private placeable(records: string[], pool: string): NodeCapacity[] {
    const horizon = Date.now() - 4 * this.leaseMs;
    this.sent = this.sent.filter((s) => s.at > horizon);
    // Unsigned, forged or stale records (and nodes of another herd version) are not placeable.
    const out: NodeCapacity[] = [];
    for (const rec of this.nodes.verify(records)) {
      // Our own record may predate our drain.
      if (rec.node === this.self.node && this.drain.draining) continue;
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
}
