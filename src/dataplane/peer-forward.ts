// Where an upstream request goes: the session's worker, or, for a session another cluster node
// owns (SessionInfo.peer), that node's data plane — one hop, the session named in the path
// prefix (whatever the owner's session header is called), the client's token passed on so the
// owner applies it, and the node-to-node credential of the upstream connection added (a fresh
// one, for a request that opens its own connection, unless `credential` is given). Pure apart
// from minting that credential. With cluster.hop relay, a client connection's later requests
// for other nodes' sessions go as a relay hop instead (relay-hop.ts); this forward remains for
// a connection's first one, HTTP/1.0, node:http's side and relayed connections.

import { PEER_HEADER, type SessionInfo } from "../core/index.ts";
import { type Route, TOKEN_HEADER } from "./route.ts";

export function upstreamTarget(
  session: SessionInfo,
  route: Route,
  headers: string[],
  credential?: string,
): { path: string; headers: string[] } {
  if (session.peer === undefined) return { path: route.path, headers };
  const rest = route.path.startsWith("/") ? route.path : `/${route.path}`;
  const out = [...headers];
  out.push(PEER_HEADER, credential ?? session.peer.credential());
  if (route.token !== undefined) out.push(TOKEN_HEADER, route.token);
  return { path: `/s/${encodeURIComponent(session.id)}${rest}`, headers: out };
}
