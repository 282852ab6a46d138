// The nftables text of `network: egress`: one table per daemon in the host's network namespace,
// where no worker can reach it (a worker lives in a namespace of its own; even with
// CAP_NET_ADMIN there it edits only that namespace's tables). Pure: egress-table.ts runs it.
//
//   table inet herd-egress-<pid>
//     set workers            every egress worker's host-side veth of this daemon
//     map pools              veth -> jump to its pool's chain p<N> (sets p<N>_allow4/6, ...)
//     chain forward          a worker's packets: anti-spoofing, never another worker, then its
//                            pool's chain (allow, deny, else out); nothing new into a worker
//     chain input            a worker's packets to any host address (the planes, loopback
//                            services on the gateway address, ...): refused
//     chain postrouting      masquerade what leaves, so replies find their way back
//
// Refusals are `reject` (admin-prohibited / TCP reset), so a blocked connect fails at once
// instead of timing out.

import type { Cidr } from "./cidr.ts";

/** Per-worker /30s come from here: 16384 workers per host, never reachable from a worker. */
export const WORKER_NET = "10.250.0.0/16";
export const WORKER_SLOTS = 16384;
/** Host-side veth names: IFNAME_PREFIX + slot (the worker side is eth0 in its namespace). */
export const IFNAME_PREFIX = "herdeg";

export function tableName(pid: number): string {
  return `herd-egress-${pid}`;
}

/** The daemon's table with no pool in it yet. `guardForwarding`: see egress-host.ts. */
export function tableRuleset(pid: number, guardForwarding: boolean): string {
  const t = tableName(pid);
  const reject = "reject with icmpx type admin-prohibited";
  return `table inet ${t} {
  set workers { type ifname; }
  map pools { type ifname : verdict; }
  chain forward {
    type filter hook forward priority filter; policy accept;
    iifname @workers fib saddr . iif oif missing drop
    iifname @workers ip daddr ${WORKER_NET} ${reject}
    oifname @workers ct state established,related accept
    oifname @workers ${reject}
    iifname @workers ct state established,related accept
    iifname vmap @pools
    iifname @workers ${reject}
${guardForwarding ? `    iifname != "${IFNAME_PREFIX}*" oifname != "${IFNAME_PREFIX}*" drop\n` : ""}  }
  chain input {
    type filter hook input priority filter; policy accept;
    iifname @workers ct state established,related accept
    iifname @workers ${reject}
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    iifname @workers oifname != @workers masquerade
  }
}
`;
}

export interface PoolRules {
  /** Small integer naming the pool's sets and chain within the table. */
  index: number;
  allow: readonly Cidr[];
  deny: readonly Cidr[];
  /** The resolvers workers may query on port 53 (the host's; see resolvers.ts). */
  resolvers: readonly string[];
}

/** Adds one pool's sets and chain (its workers' veths jump to it through the `pools` map). */
export function poolRuleset(pid: number, pool: PoolRules): string {
  const t = tableName(pid);
  const p = `p${pool.index}`;
  const set = (name: string, type: string, items: readonly string[]) =>
    `add set inet ${t} ${p}_${name} { type ${type}; flags interval; auto-merge;${items.length > 0 ? ` elements = { ${items.join(", ")} };` : ""} }\n`;
  const of = (list: readonly Cidr[], family: 4 | 6) =>
    list.filter((c) => c.family === family).map((c) => c.text);
  const v4 = (list: readonly string[]) => list.filter((a) => !a.includes(":"));
  const v6 = (list: readonly string[]) => list.filter((a) => a.includes(":"));
  const reject = "reject with icmpx type admin-prohibited";
  return [
    set("allow4", "ipv4_addr", of(pool.allow, 4)),
    set("allow6", "ipv6_addr", of(pool.allow, 6)),
    set("deny4", "ipv4_addr", of(pool.deny, 4)),
    set("deny6", "ipv6_addr", of(pool.deny, 6)),
    set("dns4", "ipv4_addr", v4(pool.resolvers)),
    set("dns6", "ipv6_addr", v6(pool.resolvers)),
    `add chain inet ${t} ${p}\n`,
    `add rule inet ${t} ${p} meta l4proto { tcp, udp } th dport 53 ip daddr @${p}_dns4 accept\n`,
    `add rule inet ${t} ${p} meta l4proto { tcp, udp } th dport 53 ip6 daddr @${p}_dns6 accept\n`,
    `add rule inet ${t} ${p} ip daddr @${p}_allow4 accept\n`,
    `add rule inet ${t} ${p} ip6 daddr @${p}_allow6 accept\n`,
    `add rule inet ${t} ${p} ip daddr @${p}_deny4 ${reject}\n`,
    `add rule inet ${t} ${p} ip6 daddr @${p}_deny6 ${reject}\n`,
    `add rule inet ${t} ${p} accept\n`,
  ].join("");
}

/** Removes one pool's chain and sets (its workers are gone, so nothing jumps to it). */
export function poolRemoval(pid: number, index: number): string {
  const t = tableName(pid);
  const p = `p${index}`;
  const sets = ["allow4", "allow6", "deny4", "deny6", "dns4", "dns6"];
  return [
    `delete chain inet ${t} ${p}\n`,
    ...sets.map((name) => `delete set inet ${t} ${p}_${name}\n`),
  ].join("");
}

/** Adds one worker's veth to the table, bound to its pool's chain. */
export function addWorker(pid: number, index: number, ifname: string): string {
  const t = tableName(pid);
  return `add element inet ${t} workers { "${ifname}" }\nadd element inet ${t} pools { "${ifname}" : jump p${index} }\n`;
}

/** Removes it again (the veth itself goes with the worker's namespace). */
export function removeWorker(pid: number, ifname: string): string {
  const t = tableName(pid);
  return `delete element inet ${t} workers { "${ifname}" }\ndelete element inet ${t} pools { "${ifname}" }\n`;
}
