// The nodes this node will send traffic to: those whose lease record in Redis is signed with
// the cluster secret, fresh, and names plain host:port addresses. Every forward (data plane,
// control calls, placement) takes the owner's addresses from here, by the owner's name — never
// from a session record, and never a `unix:` or any other address a record merely claims —
// so a writer of Redis without the secret can hide nodes or sessions, never redirect traffic.
//
// Invariant: `#live` holds only verified records, replaced wholesale by each observation.
// Concurrency: single-threaded; `resolve` may refresh from Redis, which only replaces the map
// with a newer verified one.

import type { NodeCapacity } from "./placement.ts";
import type { RecordKeys } from "./signed-record.ts";

/** Allowed difference between two nodes' clocks (records' renewedAt, peer credentials). */
export const CLOCK_SKEW_MS = 10_000;

/** host:port or [v6]:port: what build-config makes of `advertise`, and nothing else. */
const HOST_PORT = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?):\d{1,5}$/;

export function plainAddress(address: unknown): address is string {
  return typeof address === "string" && HOST_PORT.test(address);
}

export class LiveNodes {
  #live = new Map<string, NodeCapacity>();

  constructor(
    private readonly keys: RecordKeys,
    /** Every live node's record as stored (unverified). */
    private readonly read: () => Promise<string[]>,
  ) {}

  /** This node's record, signed, for its lease key. */
  sign(record: NodeCapacity): string {
    return this.keys.sign("node", JSON.stringify(record));
  }

  /** The genuine, fresh records among `records`; anything else is dropped silently. */
  verify(records: string[], now = Date.now()): NodeCapacity[] {
    return records.flatMap((signed) => {
      const json = this.keys.verify("node", signed);
      if (json === undefined) return [];
      try {
        const r = JSON.parse(json) as NodeCapacity;
        const fresh =
          typeof r.renewedAt === "number" &&
          typeof r.leaseMs === "number" &&
          now - r.renewedAt <= r.leaseMs + CLOCK_SKEW_MS;
        const ok =
          fresh &&
          typeof r.node === "string" &&
          plainAddress(r.data) &&
          plainAddress(r.control) &&
          typeof r.pools === "object" &&
          r.pools !== null &&
          Array.isArray(r.stats);
        return ok ? [r] : [];
      } catch {
        return [];
      }
    });
  }

  /** Replaces the live set with the genuine ones among `records`; returns them. */
  observe(records: string[]): NodeCapacity[] {
    const valid = this.verify(records);
    this.#live = new Map(valid.map((r) => [r.node, r]));
    return valid;
  }

  /** The live node's record as last observed, or undefined. */
  get(node: string | undefined): NodeCapacity | undefined {
    return node === undefined ? undefined : this.#live.get(node);
  }

  /** get, reading Redis once more if the node is not known yet (it may have just joined). */
  async resolve(node: string | undefined): Promise<NodeCapacity | undefined> {
    if (node === undefined) return undefined;
    const known = this.get(node);
    if (known) return known;
    // Redis unreachable: keep what was observed (established sessions keep working).
    const records = await this.read().catch(() => undefined);
    if (records) this.observe(records);
    return this.get(node);
  }
}
