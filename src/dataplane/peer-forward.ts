// Where an upstream request goes: the session's worker, or, for a session another cluster node
// owns (SessionInfo.peer), that node's data plane — one hop, the session named in the path
// prefix (whatever the owner's session header is called), the client's token passed on so the
// owner applies it, and the node-to-node credential added. Pure.

import type { SessionInfo } from "../core/index.ts";
import { type Route, TOKEN_HEADER } from "./route.ts";

export function upstreamTarget(
  session: SessionInfo,
  route: Route,
  headers: string[],
): { path: string; headers: string[] } {
  if (session.peer === undefined) return { path: route.path, headers };
  const rest = route.path.startsWith("/") ? route.path : `/${route.path}`;
  const out = [...headers];
  for (const [name, value] of Object.entries(session.peer.headers)) out.push(name, value);
  if (route.token !== undefined) out.push(TOKEN_HEADER, route.token);
  return { path: `/s/${encodeURIComponent(session.id)}${rest}`, headers: out };
}
