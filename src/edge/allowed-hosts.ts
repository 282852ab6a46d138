// Which `Host` a plane answers (against DNS rebinding): a page on evil.example whose name the
// attacker re-points to 127.0.0.1 reaches the plane from the victim's browser with `Host:
// evil.example`, and the browser treats the answer as evil.example's own. So a plane answers
// only Hosts that cannot be such a name: IP literals (a page's origin is then that address,
// herd's own), `localhost` and `*.localhost` (browsers resolve them to loopback themselves,
// never through DNS), names without a dot (`herd`, a container's or service's short name: no
// one can register such a name in public DNS for a page to live on), the name the plane is
// bound to, and the operator's `allowed_hosts`
// (exact names, `*.suffix` wildcards, or `*`: any). A Host names its host and port; only the
// host is checked. A request without Host (HTTP/1.0) is let through: no browser sends one.
//
// State: a small cache of verdicts by the exact Host value (the same few values arrive on
// every request), so the per-request cost is one Map lookup; single-threaded, bounded.

import { isIP } from "node:net";

/** Verdicts remembered; past that the cache starts over (a client cycling Hosts gains nothing). */
const CACHE_MAX = 256;

const HOSTNAME =
  /^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/;

/** What is wrong with a pattern of allowed_hosts, if anything (for the config's errors). */
export function hostPatternError(pattern: string): string | undefined {
  if (pattern === "*") return undefined;
  const name = pattern.startsWith("*.") ? pattern.slice(2) : pattern;
  if (HOSTNAME.test(name) || isIP(name) !== 0) return undefined;
  return `${JSON.stringify(pattern)} is not a host name, "*.domain" or "*" (no scheme, port or path)`;
}

/** What is wrong with a data.session_host pattern, if anything: `{id}` once, in its first label. */
export function sessionHostError(pattern: string): string | undefined {
  const at = pattern.indexOf("{id}");
  const dot = pattern.indexOf(".");
  if (at < 0 || pattern.indexOf("{id}", at + 1) >= 0 || dot < 0 || at > dot) {
    return `${JSON.stringify(pattern)} must hold {id} once, in its first label, like "{id}.sessions.example.com"`;
  }
  if (!HOSTNAME.test(pattern.replace("{id}", "x"))) {
    return `${JSON.stringify(pattern)} is not a host name with {id} in it (no scheme, port or path)`;
  }
  return undefined;
}

/** The host part of a Host value ("name:port", "[v6]:port", "name"), lower-case, no final dot. */
export function hostOf(value: string): string {
  let host: string;
  if (value.startsWith("[")) {
    const close = value.indexOf("]");
    host = close < 0 ? value : value.slice(1, close);
  } else {
    const colon = value.indexOf(":");
    host = colon < 0 ? value : value.slice(0, colon);
  }
  host = host.toLowerCase();
  return host.endsWith(".") ? host.slice(0, -1) : host;
}

export class AllowedHosts {
  readonly #exact = new Set<string>();
  readonly #suffixes: string[] = [];
  readonly #any: boolean;
  readonly #extra: ((host: string) => boolean) | undefined;
  readonly #cache = new Map<string, boolean>();

  /**
   * `bound`: the listen host (a wildcard adds nothing); `allowed`: allowed_hosts patterns;
   * `extra`: more hosts the plane answers (the data plane's session hosts).
   */
  constructor(bound: string, allowed: readonly string[] = [], extra?: (host: string) => boolean) {
    this.#exact.add(bound.toLowerCase());
    for (const pattern of allowed) {
      const p = pattern.toLowerCase();
      if (p.startsWith("*.")) this.#suffixes.push(p.slice(1));
      else this.#exact.add(p);
    }
    this.#any = allowed.includes("*");
    this.#extra = extra;
  }

  /** Does the plane answer a request with this Host header (undefined: none sent)? */
  allows(value: string | undefined): boolean {
    if (value === undefined || this.#any) return true;
    const cached = this.#cache.get(value);
    if (cached !== undefined) return cached;
    const verdict = this.#decide(hostOf(value));
    if (this.#cache.size >= CACHE_MAX) this.#cache.clear();
    this.#cache.set(value, verdict);
    return verdict;
  }

  #decide(host: string): boolean {
    if (isIP(host) !== 0) return true;
    if (host === "") return false;
    if (!host.includes(".") || host.endsWith(".localhost")) return true;
    if (this.#exact.has(host)) return true;
    for (const suffix of this.#suffixes) if (host.endsWith(suffix)) return true;
    return this.#extra?.(host) ?? false;
  }
}

/** The 421 text: what was refused and how to allow it. */
export function misdirected(plane: "control" | "data", value: string): string {
  return `Host ${JSON.stringify(value)} is not one this ${plane} plane answers (DNS rebinding guard): use an IP address or localhost, or add the name to ${plane}.allowed_hosts`;
}
