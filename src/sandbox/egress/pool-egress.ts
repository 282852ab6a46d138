// One pool's `network: egress`: its rules in the daemon's table (opened with the pool, closed
// with it), its workers' resolv.conf, and the choice a pool that says nothing about `network`
// gets (`auto`).
//
// Invariant: between construction and `close` the pool's chain exists, and every worker made by
// `launch` is filtered by it from before its veth comes up until `release` or `handOff`; a
// worker a predecessor handed over (restart) is filtered by this pool's chain from `adopt` on
// (so the allowlist of the config now loaded applies to it), and by its predecessor's until
// then (worker-net.ts). Single-threaded.

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { IsolationOptions } from "../../core/index.ts";
import { HerdError } from "../../core/index.ts";
import { DEFAULT_DENY, parseCidrs } from "./cidr.ts";
import { egressProblem, egressTable } from "./egress-host.ts";
import { resolvConf, workerResolvers } from "./resolvers.ts";
import { adoptWorkerNet, claimWorkerNet, type WorkerNet } from "./worker-net.ts";

/** What `network` a pool gets, and for `auto` why it got less than egress. */
export type NetworkChoice =
  | { mode: "egress" | "private" | "host"; fallback?: undefined }
  | { mode: "private" | "host"; fallback: string };

/**
 * Resolves `auto`: egress where the host supports it, else private (no route out), else host.
 * `privateProblem` says why private cannot be given (a worker running as root, no relay into the namespace).
 */
export function chooseNetwork(
  network: IsolationOptions["network"],
  privateProblem: string | undefined,
  egressRefused: () => string | undefined = egressProblem,
): NetworkChoice {
  if (network !== "auto") return { mode: network };
  if (privateProblem) {
    return { mode: "host", fallback: `egress and private: ${privateProblem}` };
  }
  const refused = egressRefused();
  if (refused) return { mode: "private", fallback: refused };
  return { mode: "egress" };
}

export class PoolEgress {
  private readonly index: number;
  private readonly servers: string[];
  /** For the pool's start log: what egress gives, and any DNS caveat. */
  readonly description: string;

  constructor(pool: string, egress: IsolationOptions["egress"]) {
    const allow = parseCidrs(egress.allow);
    const deny = parseCidrs([...DEFAULT_DENY, ...egress.deny]);
    for (const [key, parsed] of [
      ["allow", allow],
      ["deny", deny],
    ] as const) {
      if (typeof parsed === "string") {
        throw new HerdError(
          "failed_precondition",
          `workers.${pool}.isolation.egress.${key}${parsed}`,
        );
      }
    }
    const resolvers = workerResolvers();
    this.servers = resolvers.servers;
    this.index = egressTable.openPool({
      allow: allow as Exclude<typeof allow, string>,
      deny: deny as Exclude<typeof deny, string>,
      resolvers: resolvers.servers,
    });
    const extra = [
      egress.allow.length > 0 ? `allowed ${egress.allow.join(", ")}` : "",
      egress.deny.length > 0 ? `also denied ${egress.deny.join(", ")}` : "",
      `DNS ${this.servers.join(", ") || "none"}`,
      resolvers.note ?? "",
    ].filter(Boolean);
    this.description = `network: egress (own namespace, out to the internet only: never the host, the planes, other workers, link-local, RFC 1918, CGNAT or ULA; ${extra.join("; ")})`;
  }

  /**
   * The worker's network, and its resolv.conf written into `dir`. `owner`: the pid whose death
   * ends the worker (the daemon, or its generation's reaper), which its slot claim names.
   */
  launch(dir: string, owner: number): WorkerNet & { resolvConf: string } {
    const file = join(dir, "resolv.conf");
    writeFileSync(file, resolvConf(this.servers), { mode: 0o644 });
    return { ...claimWorkerNet(this.index, owner), resolvConf: file };
  }

  /** A handed worker's network (what its `handOff` gave), now filtered by this pool's chain. */
  adopt(handed: { slot: number; table: number }, owner: number): WorkerNet {
    return adoptWorkerNet(this.index, handed, owner);
  }

  close(): void {
    egressTable.closePool(this.index);
  }
}
