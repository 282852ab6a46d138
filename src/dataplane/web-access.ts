// The data plane's rules for web pages (see src/edge), applied where a request is routed on
// both paths (node:http's and the fast path):
//
// - Host: a request whose Host the data plane does not answer gets 421 (DNS rebinding). With
//   `data.session_host` ("{id}.sessions.example.com") the Host names the session, and then it
//   alone does: each session is an origin of its own, and a page of one cannot reach another
//   through a path prefix, query or cookie on its own origin.
// - Another origin: a browser request from a page of another origin (Sec-Fetch-Site
//   cross-site/same-site, or an Origin that is not the request's own Host) is served only when
//   it names its session itself (session header, `/s/{id}/`, query or session host — not the
//   ambient cookie) and carries that session's token itself (X-Herd-Token or query
//   herd_token), whether or not data.tokens requires tokens; it never creates a session. So a
//   no-cors fetch, a form post or a WebSocket from a foreign page reaches nothing it does not
//   hold the token of, while curl, the SDKs and Playwright's connect (no Origin) are unchanged.
// - A request another cluster node forwarded (X-Herd-Peer) was checked by that node; its
//   credential is checked per session (session-access.ts).
//
// State: AllowedHosts' verdict cache. Single-threaded.

import { PEER_HEADER } from "../core/index.ts";
import { AllowedHosts, fromOtherOrigin, hostOf, misdirected } from "../edge/index.ts";
import { AnsweredAs, protocolError } from "./http-errors.ts";
import { type Route, type RoutingHeaders, routeRequest } from "./route.ts";

export interface WebAccessOptions {
  /** The data plane's listen host. */
  bound: string;
  allowedHosts?: readonly string[];
  /** "{id}.sessions.example.com": the Host names the session. */
  sessionHost?: string;
}

/** `{id}` in a session_host pattern: one DNS label. */
const ID = "{id}";

export class WebAccess {
  readonly #hosts: AllowedHosts;
  readonly #prefix: string;
  readonly #suffix: string | undefined;

  constructor(opts: WebAccessOptions) {
    const pattern = opts.sessionHost?.toLowerCase();
    const at = pattern?.indexOf(ID) ?? -1;
    this.#prefix = pattern === undefined ? "" : pattern.slice(0, at);
    this.#suffix = pattern?.slice(at + ID.length);
    this.#hosts = new AllowedHosts(
      opts.bound,
      opts.allowedHosts,
      (host) => this.#sessionOf(host) !== undefined,
    );
  }

  /** The session a session host names, if `host` (lower-case, no port) is one. */
  #sessionOf(host: string): string | undefined {
    const suffix = this.#suffix;
    if (suffix === undefined) return undefined;
    if (!host.startsWith(this.#prefix) || !host.endsWith(suffix)) return undefined;
    const id = host.slice(this.#prefix.length, host.length - suffix.length);
    return id === "" || id.includes(".") ? undefined : id;
  }

  /** routeRequest under the rules above; throws what to answer (HerdError, AnsweredAs). */
  route(url: string, headers: RoutingHeaders, sessionHeader: string): Route {
    const host = single(headers.host);
    if (headers[PEER_HEADER] !== undefined) return routeRequest(url, headers, sessionHeader);
    if (!this.#hosts.allows(host)) {
      throw new AnsweredAs(protocolError(421, misdirected("data", host ?? "")));
    }
    const fromHost =
      this.#suffix === undefined || host === undefined ? undefined : this.#sessionOf(hostOf(host));
    const route = routeRequest(url, headers, sessionHeader, fromHost);
    const browser = {
      host,
      origin: single(headers.origin),
      fetchSite: single(headers["sec-fetch-site"]),
      referer: single(headers.referer),
    };
    if (fromOtherOrigin(browser)) route.crossOrigin = true;
    return route;
  }
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
