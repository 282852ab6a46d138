// One `network: egress` worker's network: a named namespace holding the worker side (eth0) of a
// veth pair, the host side in a daemon's nftables table bound to its pool's chain, and a /30 of
// WORKER_NET (host .1 = the worker's gateway, worker .2).
//
// Invariant: slot N is held from `claimWorkerNet` until `release` by the claim file CLAIMS/N
// (O_EXCL), holding the pid of the process whose death ends the worker: the daemon, or for a
// restartable worker its generation's reaper (src/pool/reaper.ts), which lives while any daemon
// holds the generation, so the claim stays held across a restart whichever daemon dies. Two
// daemons on one host never share a slot, an address or an interface name. From before its veth
// comes up until `release`, the veth is in the table of at least one daemon that is alive or
// whose table no sweep removes (egress-host.ts: a dead daemon's table stays while it filters a
// live claim's veth): `handOff` leaves it where it is, and a successor's `adoptWorkerNet` puts it
// in its own table (its pool's chain: the new config's allowlist) before taking it out of the
// predecessor's — or, when its pool has no egress chain any more, leaves it in the
// predecessor's table (the old allowlist) until `release`. `release` runs once, after the
// worker's tree is gone, by whichever daemon owns the worker then; deleting the namespace takes
// the veth pair with it. Single-threaded, synchronous.

import { randomInt } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { HerdError } from "../../core/index.ts";
import { CLAIMS, dropOrphanTable, egressTools, run } from "./egress-host.ts";
import {
  addWorker,
  IFNAME_PREFIX,
  removeWorker,
  WORKER_NET,
  WORKER_SLOTS,
} from "./egress-ruleset.ts";

export interface WorkerNet {
  /** /run/netns/<name>: what the wrapper enters (nsenter --net=). */
  netnsPath: string;
  release(): void;
  /** For a successor daemon (restart): from then on `release` frees nothing here. */
  handOff(): { slot: number; table: number };
}

function slotAddresses(slot: number): { gateway: string; address: string } {
  const [a, b] = WORKER_NET.split(".").map(Number);
  const base = slot * 4;
  const c = base >> 8;
  const d = base & 0xff;
  return { gateway: `${a}.${b}.${c}.${d + 1}`, address: `${a}.${b}.${c}.${d + 2}` };
}

function claimSlot(owner: number): number {
  mkdirSync(CLAIMS, { recursive: true, mode: 0o700 });
  const start = randomInt(WORKER_SLOTS);
  for (let i = 0; i < WORKER_SLOTS; i++) {
    const slot = (start + i) % WORKER_SLOTS;
    try {
      writeFileSync(join(CLAIMS, String(slot)), `${owner}\n`, { flag: "wx" });
      return slot;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
  }
  throw new HerdError(
    "resource_exhausted",
    `network: egress: all ${WORKER_SLOTS} worker networks of this host are in use`,
  );
}

/** Removes slot N's claim if it still names `owner` (never another worker's). */
function unclaim(slot: number, owner: number): void {
  const file = join(CLAIMS, String(slot));
  try {
    if (readFileSync(file, "utf8").trim() === String(owner)) rmSync(file, { force: true });
  } catch {}
}

/**
 * What a worker's network holds until `release`. `table`: the daemon whose table filters its veth
 * (undefined: none yet).
 */
function held(slot: number, owner: number, table: number | undefined): WorkerNet {
  const { ip, nft } = egressTools();
  const ifname = `${IFNAME_PREFIX}${slot}`;
  let state: "held" | "released" | "handed" = "held";
  const release = () => {
    if (table !== undefined) {
      try {
        run([nft, "-f", "-"], removeWorker(table, ifname));
      } catch {}
    }
    try {
      run([ip, "netns", "delete", ifname]);
    } catch {}
    unclaim(slot, owner);
    if (table !== undefined && table !== process.pid) dropOrphanTable(table);
  };
  return {
    netnsPath: `/run/netns/${ifname}`,
    release: () => {
      if (state !== "held") return;
      state = "released";
      release();
    },
    handOff: () => {
      state = "handed";
      return { slot, table: table ?? process.pid };
    },
  };
}

/**
 * Makes the namespace and veth pair and puts the worker under its pool's chain. `owner`: the
 * pid whose death ends the worker (the claim names it).
 */
export function claimWorkerNet(poolIndex: number, owner: number): WorkerNet {
  const { ip, nft } = egressTools();
  const slot = claimSlot(owner);
  const ifname = `${IFNAME_PREFIX}${slot}`;
  const { gateway, address } = slotAddresses(slot);
  let net = held(slot, owner, undefined);
  try {
    // The filter first: the host side is never up without it.
    run([nft, "-f", "-"], addWorker(process.pid, poolIndex, ifname));
    net = held(slot, owner, process.pid);
    run(
      [ip, "-batch", "-"],
      [
        `netns add ${ifname}`,
        `link add ${ifname} type veth peer name eth0 netns ${ifname}`,
        `addr add ${gateway}/30 dev ${ifname}`,
        `link set ${ifname} up`,
        "",
      ].join("\n"),
    );
    run(
      [ip, "-n", ifname, "-batch", "-"],
      [
        "link set lo up",
        `addr add ${address}/30 dev eth0`,
        "link set eth0 up",
        `route add default via ${gateway}`,
        "",
      ].join("\n"),
    );
  } catch (err) {
    net.release();
    throw new HerdError(
      "unavailable",
      `network: egress: could not make the worker's network: ${(err as Error).message}`,
    );
  }
  return net;
}

/**
 * Owns a handed worker's network (restart): its veth joins this daemon's table under the pool's
 * chain `poolIndex`, then leaves `handed.table` (the predecessor's; gone already if that one
 * died and nothing was left in it). Without `poolIndex` (the pool is no longer `egress` here) it
 * stays where it is. Its claim keeps naming `owner`.
 */
export function adoptWorkerNet(
  poolIndex: number | undefined,
  handed: { slot: number; table: number },
  owner: number,
): WorkerNet {
  const { nft } = egressTools();
  const ifname = `${IFNAME_PREFIX}${handed.slot}`;
  if (poolIndex === undefined) return held(handed.slot, owner, handed.table);
  // (also in a reclaim, back from a successor that died: it may have moved it to its own table)
  run([nft, "-f", "-"], addWorker(process.pid, poolIndex, ifname));
  if (handed.table !== process.pid) {
    try {
      run([nft, "-f", "-"], removeWorker(handed.table, ifname));
    } catch {} // its daemon died and its table is gone
    dropOrphanTable(handed.table);
  }
  return held(handed.slot, owner, process.pid);
}
