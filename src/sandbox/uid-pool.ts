// Hands out one unprivileged uid per live worker from a configured range, like a jailer's uid
// pool.
//
// Invariant: a uid is held from `take` until `give` and never handed out twice meanwhile (by
// any pool of the launcher: they share the held set); the
// caller gives it back only once every process of the worker's tree is gone, so no two live
// workers ever share a uid (they cannot signal, ptrace or read each other's private files).
// Allocation walks the range round-robin, so a freed uid is reused as late as possible (files
// it left in a shared /tmp are the previous tenant's: use `filesystem: private` to leave none).
// Across daemons, `claims` (uid-claims.ts) holds each uid host-wide from take to give: a uid
// another live daemon holds is skipped. Single-threaded: take and give are synchronous.

import { HerdError } from "../core/index.ts";
import type { ClaimOwner } from "./uid-claims.ts";

export class UidPool {
  private next: number;

  /**
   * `held` is shared by every pool of one launcher: two pools whose ranges overlap (both on
   * the default, say) must not hand one uid to two live workers.
   */
  constructor(
    private readonly first: number,
    private readonly last: number,
    private readonly held = new Set<number>(),
    private readonly claims?: {
      claim(uid: number, owner?: ClaimOwner): boolean;
      release(uid: number, owner?: ClaimOwner): void;
    },
  ) {
    this.next = first;
  }

  /** A uid for one worker, claimed host-wide for `owner` (default: this daemon). */
  take(owner?: ClaimOwner): number {
    const size = this.last - this.first + 1;
    for (let tried = 0; tried < size; tried++) {
      const uid = this.next;
      this.next = uid === this.last ? this.first : uid + 1;
      if (!this.held.has(uid) && (this.claims?.claim(uid, owner) ?? true)) {
        this.held.add(uid);
        return uid;
      }
    }
    throw new HerdError(
      "resource_exhausted",
      `isolation.uid_range ${this.first}-${this.last}: all ${size} uids are in use by live workers (of this daemon or another on the host)`,
    );
  }

  give(uid: number, owner?: ClaimOwner): void {
    this.held.delete(uid);
    this.claims?.release(uid, owner);
  }

  /** Holds a uid a predecessor daemon took for a worker this one now owns (restart). */
  hold(uid: number): void {
    this.held.add(uid);
  }
}
