// Admission of new TCP connections against a global cap and a per-client-address cap.
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
    const address = socket.remoteAddress ?? "unknown";
    if (max > 0 && this.#open >= max) {
      return { ok: false, reason: `${this.#open} client connections are open (limit ${max})` };
    }
    const fromClient = this.#perClient.get(address) ?? 0;
    if (perClient > 0 && fromClient >= perClient) {
      return {
        ok: false,
        reason: `${fromClient} connections from ${address} are open (limit ${perClient} per client)`,
      };
    }
    this.#open++;
    this.#perClient.set(address, fromClient + 1);
    socket.once("close", () => {
      this.#open--;
      const left = (this.#perClient.get(address) ?? 1) - 1;
      if (left > 0) this.#perClient.set(address, left);
      else this.#perClient.delete(address);
    });
    return { ok: true };
  }
}
