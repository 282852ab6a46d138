// One `network: egress` worker's network: a named namespace holding the worker side (eth0) of a
// veth pair, the host side in the daemon's nftables table bound to the pool's chain, and a /30
// of WORKER_NET (host .1 = the worker's gateway, worker .2).
//
// Invariant: slot N is held from `claimWorkerNet` until `release` by the claim file
// CLAIMS/N (O_EXCL, holding the daemon's pid), so two daemons on one host never share a slot,
// an address or an interface name; `release` runs once, after the worker's tree is gone, and
// deleting the namespace takes the veth pair with it. Single-threaded, synchronous.

import { randomInt } from "node:crypto";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { HerdError } from "../../core/index.ts";
import { CLAIMS, egressTools, run } from "./egress-host.ts";
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
}

function slotAddresses(slot: number): { gateway: string; address: string } {
  const [a, b] = WORKER_NET.split(".").map(Number);
  const base = slot * 4;
  const c = base >> 8;
  const d = base & 0xff;
  return { gateway: `${a}.${b}.${c}.${d + 1}`, address: `${a}.${b}.${c}.${d + 2}` };
}

function claimSlot(): number {
  mkdirSync(CLAIMS, { recursive: true, mode: 0o700 });
  const start = randomInt(WORKER_SLOTS);
  for (let i = 0; i < WORKER_SLOTS; i++) {
    const slot = (start + i) % WORKER_SLOTS;
    try {
      writeFileSync(join(CLAIMS, String(slot)), `${process.pid}\n`, { flag: "wx" });
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

/** Makes the namespace and veth pair and puts the worker under its pool's chain. */
export function claimWorkerNet(poolIndex: number): WorkerNet {
  const { ip, nft } = egressTools();
  const slot = claimSlot();
  const ifname = `${IFNAME_PREFIX}${slot}`;
  const { gateway, address } = slotAddresses(slot);
  let filtered = false;
  const release = () => {
    if (filtered) {
      try {
        run([nft, "-f", "-"], removeWorker(process.pid, ifname));
      } catch {}
    }
    try {
      run([ip, "netns", "delete", ifname]);
    } catch {}
    rmSync(join(CLAIMS, String(slot)), { force: true });
  };
  try {
    // The filter first: the host side is never up without it.
    run([nft, "-f", "-"], addWorker(process.pid, poolIndex, ifname));
    filtered = true;
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
    release();
    throw new HerdError(
      "unavailable",
      `network: egress: could not make the worker's network: ${(err as Error).message}`,
    );
  }
  let released = false;
  return {
    netnsPath: `/run/netns/${ifname}`,
    release: () => {
      if (released) return;
      released = true;
      release();
    },
  };
}
