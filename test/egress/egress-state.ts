// What `network: egress` leaves on the host, as the specs see it: a daemon's nftables table, the
// slot claims under /run/herd-egress (each naming the process whose death ends its worker: the
// daemon, or its generation's reaper), the worker namespaces /run/netns/herdeg<slot> and the
// host-side veths of the same name. Read-only, but for `sweepEgressOrphans` (the daemons' own
// sweep of what dead ones left).

import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { cmdline } from "../helpers/processes.ts";

export { sweepEgressOrphans } from "../../src/sandbox/index.ts";

const CLAIMS = "/run/herd-egress";

/** The reaper shell of daemon `pid` (its child: src/pool/reaper.ts), if it has one. */
export function reaperOf(pid: number): number | undefined {
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === pid && cmdline(Number(name)).includes("read -r file")) return Number(name);
    } catch {}
  }
  return undefined;
}

/** Slot → the pid its claim names, for every claim on the host. */
export function egressClaims(): Map<number, number> {
  const found = new Map<number, number>();
  let names: string[] = [];
  try {
    names = readdirSync(CLAIMS).filter((n) => /^\d+$/.test(n));
  } catch {}
  for (const name of names) {
    try {
      found.set(Number(name), Number(readFileSync(`${CLAIMS}/${name}`, "utf8").trim()));
    } catch {}
  }
  return found;
}

/** The slots claimed in the name of any of `owners`. */
export function slotsOf(owners: readonly number[]): number[] {
  return [...egressClaims()].filter(([, o]) => owners.includes(o)).map(([slot]) => slot);
}

/** The slot of the worker namespace process `pid` lives in (host pid). */
export function slotOfProcess(pid: number): number | undefined {
  const name = execFileSync("ip", ["netns", "identify", String(pid)])
    .toString()
    .trim();
  const m = /^herdeg(\d+)$/.exec(name);
  return m ? Number(m[1]) : undefined;
}

/** The egress table of daemon `pid`, if any: the slots of the veths it filters. */
export function tableOf(pid: number): number[] | undefined {
  try {
    const set = execFileSync("nft", ["list", "set", "inet", `herd-egress-${pid}`, "workers"], {
      stdio: ["ignore", "pipe", "ignore"],
    }).toString();
    return [...set.matchAll(/"herdeg(\d+)"/g)].map((m) => Number(m[1]));
  } catch {
    return undefined;
  }
}

function linkExists(name: string): boolean {
  try {
    execFileSync("ip", ["link", "show", name], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/**
 * What is left of the egress state of `daemons` (their tables), of claims naming any of `owners`
 * and of the namespaces and veths of `slots`: empty when nothing is.
 */
export function egressLeftovers(
  daemons: readonly number[],
  owners: readonly number[],
  slots: readonly number[],
): string[] {
  return [
    ...daemons.filter((pid) => tableOf(pid) !== undefined).map((pid) => `table herd-egress-${pid}`),
    ...slotsOf(owners).map((slot) => `claim ${slot}`),
    ...slots.filter((s) => existsSync(`/run/netns/herdeg${s}`)).map((s) => `netns herdeg${s}`),
    ...slots.filter((s) => linkExists(`herdeg${s}`)).map((s) => `veth herdeg${s}`),
  ];
}
