// The one cookie herd sets: `herd_token`, when a browser opens a session's page with the token
// in the query (`/s/{id}/?herd_token=…`, or `?herd_token=…` on a session host), so that the
// page's later requests (subresources, fetches, WebSockets) carry it without the page ever
// holding it: `HttpOnly` (no script reads it, nor overwrites it from script), `SameSite=Strict`
// (no other site's page sends it) and scoped to the session: `Path=/s/{id}/` under path
// routing, the session's own host under data.session_host (no Domain: that host only). Only
// for a token that is the session's, and not for other routes (a query- or header-routed
// request has no path of its own to scope a cookie to). Pure.
//
// Under path routing every session shares the data plane's origin: a session's page can still
// reach another session's paths by fetch with the browser's cookies for them. Only session
// hosts give each session an origin of its own (docs/operations.md says so).

import type { SessionInfo } from "../core/index.ts";
import { type Route, TOKEN_PARAM } from "./route.ts";

/** The Set-Cookie value for this answer, if herd sets one. */
export function sessionCookie(route: Route, session: SessionInfo): string | undefined {
  if (route.tokenFrom !== "query" || route.token !== session.token) return undefined;
  if (route.source !== "path" && route.source !== "host") return undefined;
  const path = route.source === "path" ? `/s/${encodeURIComponent(session.id)}/` : "/";
  return `${TOKEN_PARAM}=${encodeURIComponent(session.token)}; Path=${path}; HttpOnly; SameSite=Strict`;
}
