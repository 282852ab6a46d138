// The claims this node holds in Redis for the sessions it runs: winning one before a worker
// starts, giving it up when the session ends, and what fencing and a Redis that lost its data
// do to them.
//
// Invariant (one id → one worker, cluster-wide): a local worker is started for an id only
// after this node won the id's claim in Redis (an atomic script: create-if-absent plus a fresh
// fencing generation), and it is published only if this node still holds that generation;
// otherwise it is killed. A claim is given up by the end of the very worker it was taken for
// (the append of the end event drops it in the same script), and while it is held its worker's
// process group is on the fence watchdog's list.
//
// Concurrency: claims are serialised by Redis; concurrent local starts of one id share the
// Herd's own singleflight. `ended` is called in event order by the single event pump
// (cluster-events.ts). While `reconcile` runs no claim starts, and the ids being claimed count
// as held, so it never takes one of this process's for a dead one's.

import type { AcquireOptions, HerdEvent, SessionDirectory, SessionInfo } from "../core/index.ts";
import { HerdError } from "../core/index.ts";
import type { FenceWatchdog } from "./fence-watchdog.ts";
import type { RedisSessions, SessionRecord } from "./redis-sessions.ts";
import { encodeSession, type NodeAddresses } from "./session-codec.ts";
import type { RecordKeys } from "./signed-record.ts";

/** A held claim (restart hands them over with the sessions: `[id, claim]`). */
export interface Claim {
  gen: string;
  workerPid?: number;
  workerId?: string;
}

/** What trying to start a session here came to: started, or another node has the id. */
export type Started =
  | { kind: "started"; session: SessionInfo }
  | { kind: "taken"; record: SessionRecord };

export class LocalClaims {
  /** Local sessions' claims (the generation this node holds each id at). */
  private readonly held = new Map<string, Claim>();
  /** Ids whose claim is on its way to Redis (not held yet). */
  private readonly claiming = new Set<string>();
  private reconciled: Promise<void> = Promise.resolve();

  constructor(
    private readonly local: SessionDirectory,
    private readonly store: RedisSessions,
    private readonly self: NodeAddresses,
    private readonly keys: RecordKeys,
    private readonly watchdog: FenceWatchdog,
  ) {}

  /** Wins the id's claim, starts the worker, publishes it; or says who has the id. */
  async start(
    pool: string,
    id: string,
    opts: AcquireOptions,
    handed?: () => void,
  ): Promise<Started> {
    const { store, self } = this;
    await this.reconciled;
    this.claiming.add(id);
    const claim = await store.claim(self.node, pool, id).finally(() => this.claiming.delete(id));
    if (claim.kind === "dead") {
      throw new HerdError(
        "unavailable",
        "cluster: this node's lease has lapsed in Redis; it rejoins within one renewal",
      );
    }
    if (claim.kind === "taken") return claim;
    this.held.set(id, { gen: claim.gen });
    let session: SessionInfo;
    try {
      const acquiring = this.local.acquire(pool, id, opts);
      handed?.();
      session = await acquiring;
    } catch (err) {
      this.held.delete(id);
      await store.drop(self.node, claim.gen, id).catch(() => {});
      throw err;
    }
    const held = this.held.get(id);
    if (held?.gen === claim.gen) {
      held.workerPid = session.workerPid;
      held.workerId = session.workerId;
      this.watchdog.add(session.workerPid);
    }
    const ok = await store
      .commit(self.node, claim.gen, id, encodeSession(session, self, this.keys))
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
    return { kind: "started", session };
  }

  /**
   * Called in order for every local event before it is appended: a local session that ended
   * gives up its claim. Returns the generation to drop, which the append of this very event
   * does in the same script (one round trip; the record goes with the end event, never apart).
   * If that append fails, the record stays until Redis is back and this node's lease lapses or
   * it rebuilds the registry.
   */
  ended(event: HerdEvent): string | undefined {
    if (
      event.sessionId === undefined ||
      (event.type !== "session_released" &&
        event.type !== "session_expired" &&
        event.type !== "session_lost")
    ) {
      return undefined;
    }
    const claim = this.held.get(event.sessionId);
    const workerId = event.workerId ?? event.session?.workerId;
    if (!claim || (claim.workerId !== undefined && claim.workerId !== workerId)) return undefined;
    this.held.delete(event.sessionId);
    if (claim.workerPid !== undefined) this.watchdog.remove(claim.workerPid);
    return claim.gen;
  }

  /** Restart: the claims of the handed sessions, which a successor holds from now on. */
  handOver(ids: string[]): [string, Claim][] {
    const handed: [string, Claim][] = [];
    for (const id of ids) {
      const claim = this.held.get(id);
      if (!claim) continue;
      this.held.delete(id);
      handed.push([id, claim]);
    }
    return handed;
  }

  /** The claims a restart handed over: the successor's, or back to this process when the
   * successor exited before it served (their groups are on the same watchdog either way). */
  adopt(claims: [string, Claim][]): void {
    for (const [id, claim] of claims) this.held.set(id, claim);
  }

  /**
   * Restart: the successor died before it served, and this process is the node again; a
   * session that successor started (its worker died with it) is still listed under the node in
   * Redis: `drop` removes all but the held ones (and those being claimed).
   */
  reconcile(drop: (held: string[]) => Promise<unknown>): Promise<void> {
    this.reconciled = drop([...this.held.keys(), ...this.claiming]).then(
      () => {},
      () => {},
    );
    return this.reconciled;
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
    const { node } = this.self;
    for (const s of this.local.sessions()) {
      const claim = await this.store
        .claim(node, s.pool, s.id, encodeSession(s, this.self, this.keys))
        .catch(() => undefined);
      if (claim?.kind === "claimed") {
        this.held.set(s.id, { gen: claim.gen, workerPid: s.workerPid, workerId: s.workerId });
      } else if (claim?.kind === "taken" && claim.record.node !== node) {
        await this.local
          .release(s.id, { kill: true, end: { kind: "lost", reason: "fenced: owned elsewhere" } })
          .catch(() => {});
      }
    }
  }
}
