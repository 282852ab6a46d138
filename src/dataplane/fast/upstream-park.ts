// Idle upstream connections to workers that outlived their client connection, kept for the
// next client connection to the same worker: a client that opens a connection per request
// must not cost the worker a TCP handshake per request either. Never used for a cluster
// peer's session (there the upstream connection mirrors the client's, see upstream-agents.ts).
//
// Invariant: a parked connection is idle and open; it leaves the park when taken, when it
// closes (a worker's idle timeout or exit) or at close(), after which nothing is parked.
// At most MAX_PER_TARGET per target.
// Single-threaded.

import type { PinnedUpstream } from "./pinned-upstream.ts";

const MAX_PER_TARGET = 256;

export class UpstreamPark {
  readonly #idle = new Map<string, PinnedUpstream[]>();
  #closed = false;

  /** close() was called: whatever is offered now is destroyed (the data plane is closing). */
  get closed(): boolean {
    return this.#closed;
  }

  take(address: string): PinnedUpstream | undefined {
    const list = this.#idle.get(address);
    for (let u = list?.pop(); u !== undefined; u = list?.pop()) {
      if (u.usable) return u;
      u.destroy();
    }
    return undefined;
  }

  park(upstream: PinnedUpstream): void {
    if (this.#closed || !upstream.usable) {
      upstream.destroy();
      return;
    }
    let list = this.#idle.get(upstream.address);
    if (list === undefined) {
      list = [];
      this.#idle.set(upstream.address, list);
    }
    if (list.length >= MAX_PER_TARGET) {
      upstream.destroy();
      return;
    }
    list.push(upstream);
    upstream.onClose = () => {
      const at = list.indexOf(upstream);
      if (at >= 0) list.splice(at, 1);
      if (list.length === 0 && this.#idle.get(upstream.address) === list) {
        this.#idle.delete(upstream.address);
      }
    };
  }

  close(): void {
    this.#closed = true;
    for (const list of this.#idle.values()) for (const u of list) u.destroy();
    this.#idle.clear();
  }
}
