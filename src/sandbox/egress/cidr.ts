// CIDR ranges of `isolation.egress.allow` / `deny` and the ranges a worker on `network: egress`
// never reaches unless the pool's allow list names them. Pure functions: parsing, and the
// default deny list (which the nftables ruleset in egress-ruleset.ts turns into sets).

import { isIP } from "node:net";

export interface Cidr {
  family: 4 | 6;
  /** As nft writes it: "10.0.0.0/8", "fc00::/7". */
  text: string;
}

/**
 * Unreachable from `network: egress` by default: this network ("0/8"), RFC 1918, CGNAT, loopback,
 * link-local (cloud metadata), IETF protocol assignments, benchmarking, multicast and reserved,
 * and their IPv6 counterparts (ULA, link-local, multicast, loopback, IPv4-mapped). The host's own
 * addresses and other workers are refused separately, whatever the allow list says.
 */
export const DEFAULT_DENY: readonly string[] = [
  "0.0.0.0/8",
  "10.0.0.0/8",
  "100.64.0.0/10",
  "127.0.0.0/8",
  "169.254.0.0/16",
  "172.16.0.0/12",
  "192.0.0.0/24",
  "192.168.0.0/16",
  "198.18.0.0/15",
  "224.0.0.0/3",
  "::/127",
  "::ffff:0:0/96",
  "fc00::/7",
  "fe80::/10",
  "ff00::/8",
];

/** Parses "a.b.c.d/n", "a.b.c.d" (/32), "x::y/n" or "x::y" (/128); a string is the error. */
export function parseCidr(input: string): Cidr | string {
  const [addr = "", prefix, ...rest] = input.trim().split("/");
  const family = isIP(addr) as 0 | 4 | 6;
  if (family === 0 || rest.length > 0) {
    return `${JSON.stringify(input)} is not an address or CIDR range (e.g. "203.0.113.0/24", "2001:db8::/32")`;
  }
  const max = family === 4 ? 32 : 128;
  const bits = prefix === undefined ? max : /^\d{1,3}$/.test(prefix) ? Number(prefix) : Number.NaN;
  if (!(bits >= 0 && bits <= max)) {
    return `${JSON.stringify(input)}: the prefix length must be 0-${max}`;
  }
  const base = maskAddress(addr, family, bits);
  if (base !== addr.toLowerCase() && prefix !== undefined) {
    return `${JSON.stringify(input)} has host bits set; the range is ${base}/${bits}`;
  }
  return { family, text: `${base}/${bits}` };
}

/** Parses a whole list, naming the index of the first bad entry. */
export function parseCidrs(list: readonly string[]): Cidr[] | string {
  const out: Cidr[] = [];
  for (const [i, entry] of list.entries()) {
    const cidr = parseCidr(entry);
    if (typeof cidr === "string") return `[${i}]: ${cidr}`;
    out.push(cidr);
  }
  return out;
}

function maskAddress(addr: string, family: 4 | 6, bits: number): string {
  const bytes = family === 4 ? addr.split(".").map(Number) : ipv6Bytes(addr);
  for (let i = 0; i < bytes.length; i++) {
    const keep = Math.max(0, Math.min(8, bits - i * 8));
    bytes[i]! &= (0xff << (8 - keep)) & 0xff;
  }
  if (family === 4) return bytes.join(".");
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  // The shortest form, as nft prints it: the longest run of zero groups becomes "::".
  const joined = groups.join(":");
  const runs = [...joined.matchAll(/(?:^|:)0(?::0)+(?::|$)/g)];
  const longest = runs.sort((a, b) => b[0].length - a[0].length)[0];
  if (!longest) return joined;
  return `${joined.slice(0, longest.index)}::${joined.slice(longest.index + longest[0].length)}`;
}

function ipv6Bytes(addr: string): number[] {
  let text = addr.toLowerCase();
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4[1]!.split(".").map(Number);
    text = `${text.slice(0, v4.index)}${((a! << 8) | b!).toString(16)}:${((c! << 8) | d!).toString(16)}`;
  }
  const [head, tail] = text.split("::");
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill("0"), ...t];
  return groups.flatMap((g) => {
    const n = Number.parseInt(g, 16);
    return [n >> 8, n & 0xff];
  });
}
