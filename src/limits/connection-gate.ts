// Admission of new connections against a global cap and a per-client-address cap (TCP only: a
// Unix-socket client has no address, and the socket's file mode already says who may connect,
// so those count against the global cap alone). A full
// gate still admits a client address that holds no connection at all, into a reserve of a
// tenth of the cap: a flood from many addresses fills the cap, but a load-balancer probe or a
// user arriving meanwhile is not refused for it (those holding connections are).
//
// Invariant: `open` counts exactly the admitted sockets that have not closed yet, and
// `perClient` holds an entry only for addresses with at least one of them (so a scan of
// many addresses leaves no garbage). Single-threaded: admit() and the close listeners run on
// the event loop; a refused socket is never counted.

import type { Socket } from "node:net";

export interface ConnectionLimits {
  /** Open connections at most; 0: no cap. */
  max: number;
  /** Open connections from one client address at most; 0: no cap. */
  perClient: number;
}

/**
 * A plane's limits from its settings: `max` unset takes `derivedMax` (from the open-files
 * limit); `perClient` unset is half the cap, or no cap when the plane has none (`max` 0).
 */
export function connectionLimits(
  max: number | undefined,
  perClient: number | undefined,
  derivedMax: number,
): ConnectionLimits {
  const cap = max ?? derivedMax;
  return { max: cap, perClient: perClient ?? (cap === 0 ? 0 : Math.max(1, Math.floor(cap / 2))) };
}

export type Admission = { ok: true } | { ok: false; reason: string };

export class ConnectionGate {
  #open = 0;
  readonly #perClient = new Map<string, number>();

  constructor(readonly limits: ConnectionLimits) {}

  get open(): number {
    return this.#open;
  }

  /** Counts `socket` until it closes, or says why it must be refused. */
  admit(socket: Socket): Admission {
    const { max, perClient } = this.limits;
    const address = socket.remoteAddress;
    const fromClient = address === undefined ? 0 : (this.#perClient.get(address) ?? 0);
    const reserve = Math.ceil(max / 10);
    if (max > 0 && this.#open >= max && (fromClient > 0 || this.#open >= max + reserve)) {
      return { ok: false, reason: `${this.#open} client connections are open (limit ${max})` };
    }
    if (address !== undefined && perClient > 0 && fromClient >= perClient) {
      return {
        ok: false,
        reason: `${fromClient} connections from ${address} are open (limit ${perClient} per client)`,
      };
    }
    this.#open++;
    if (address !== undefined) this.#perClient.set(address, fromClient + 1);
    socket.once("close", () => {
      this.#open--;
      if (address === undefined) return;
      const left = (this.#perClient.get(address) ?? 1) - 1;
      if (left > 0) this.#perClient.set(address, left);
      else this.#perClient.delete(address);
    });
    return { ok: true };
  }
}
