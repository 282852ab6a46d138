// "host:port" listen addresses for both planes, and the loopback test that decides whether
// tokens are required by default.

import { isIP } from "node:net";

export interface ListenAddress {
  /** Host as given, without IPv6 brackets; "0.0.0.0" for the ":port" form. */
  host: string;
  port: number;
}

export const LISTEN_HINT = 'use "host:port", e.g. "127.0.0.1:7070", "[::1]:7070" or ":7070"';

const HOSTNAME =
  /^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/;

export function parseListenAddress(text: string): ListenAddress | { error: string } {
  const bad = { error: `${JSON.stringify(text)} is not a listen address (${LISTEN_HINT})` };
  let host: string;
  let portText: string;
  const v6 = /^\[([^\]]*)\]:(.*)$/.exec(text);
  if (v6) {
    host = v6[1]!;
    portText = v6[2]!;
    if (isIP(host) !== 6) return bad;
  } else {
    const colon = text.lastIndexOf(":");
    if (colon < 0) return bad;
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (host === "") host = "0.0.0.0";
    else if (host.includes(":") || (isIP(host) === 0 && !HOSTNAME.test(host))) return bad;
  }
  if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) {
    return { error: `${JSON.stringify(text)}: port must be a number 0-65535 (${LISTEN_HINT})` };
  }
  return { host, port: Number(portText) };
}

/** Only reachable from this machine? Names other than localhost count as reachable. */
export function isLoopback(host: string): boolean {
  if (host === "localhost" || host === "::1") return true;
  return isIP(host) === 4 && host.startsWith("127.");
}

/** host:port for URLs and messages (brackets around IPv6). */
export function formatHostPort(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

const WILDCARD = new Set(["0.0.0.0", "::"]);

/**
 * Would binding both fail with EADDRINUSE? Same port (not 0, which picks a free one) and the
 * same host, or a wildcard host on either side. Different names that resolve alike are not
 * caught here; binding still reports those.
 */
export function listenClash(a: ListenAddress, b: ListenAddress): boolean {
  if (a.port === 0 || a.port !== b.port) return false;
  const host = (h: string) => (h === "localhost" ? "127.0.0.1" : h.toLowerCase());
  return host(a.host) === host(b.host) || WILDCARD.has(a.host) || WILDCARD.has(b.host);
}
