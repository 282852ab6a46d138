// Which DNS resolvers a worker on `network: egress` is given. Its own /etc/resolv.conf lists
// the host's resolvers, and its pool's filter lets it reach exactly those on port 53 (even when
// they sit in a denied range, as a cloud VPC's resolver usually does). A resolver on the host's
// loopback (systemd-resolved's 127.0.0.53, a local dnsmasq) is the host itself, which a worker
// never reaches: then the upstream servers systemd-resolved itself uses are given instead
// (/run/systemd/resolve/resolv.conf); with none, the worker has no resolver, and the pool's
// start log says so.

import { readFileSync } from "node:fs";

export interface Resolvers {
  servers: string[];
  /** Why the host's list was changed, for the pool's start log. */
  note?: string;
}

const UPSTREAM = "/run/systemd/resolve/resolv.conf";

export function nameservers(text: string): string[] {
  return [...text.matchAll(/^\s*nameserver\s+(\S+)/gm)].map((m) => m[1]!.replace(/%.*$/, ""));
}

function isLoopback(addr: string): boolean {
  return addr.startsWith("127.") || addr === "::1";
}

function read(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

export function workerResolvers(resolvConf = "/etc/resolv.conf", upstream = UPSTREAM): Resolvers {
  const listed = nameservers(read(resolvConf));
  const servers = listed.filter((a) => !isLoopback(a));
  if (servers.length === listed.length) return { servers };
  const instead = nameservers(read(upstream)).filter((a) => !isLoopback(a));
  const dropped = listed.filter(isLoopback).join(", ");
  if (instead.length > 0) {
    return {
      servers: [...servers, ...instead],
      note: `the host's resolver ${dropped} is on loopback: workers use its upstream servers ${instead.join(", ")} (${upstream})`,
    };
  }
  return {
    servers,
    note: `the host's resolver ${dropped} is on loopback, which workers never reach, and ${upstream} names no upstream${servers.length === 0 ? ": workers cannot resolve names" : ""}`,
  };
}

/** The worker's /etc/resolv.conf. */
export function resolvConf(servers: readonly string[]): string {
  return `# written by herd for network: egress (the host's resolvers a worker may reach)\n${servers.map((s) => `nameserver ${s}\n`).join("")}`;
}
