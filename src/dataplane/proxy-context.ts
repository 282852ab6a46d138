// What the HTTP and WebSocket forwarders share: the directory, the per-worker agents, the
// access rules and a few counters. Built once by startDataPlane; the counters are plain
// numbers mutated on the event loop thread only.

import type { Socket } from "node:net";
import type { Logger, SessionRoutes } from "../core/index.ts";
import type { BodyRate } from "./body-deadline.ts";
import type { ClientConnections } from "./client-connections.ts";
import type { DataPlaneCounters } from "./data-plane-counters.ts";
import type { UpstreamPark } from "./fast/upstream-park.ts";
import type { UpstreamAgents } from "./node-http/upstream-agents.ts";
import type { AccessOptions } from "./session-access.ts";
import type { WebAccess } from "./web-access.ts";

export interface ProxyContext {
  directory: SessionRoutes;
  agents: UpstreamAgents;
  /** The fast path's idle upstream connections between client connections. */
  park: UpstreamPark;
  logger: Logger;
  access: AccessOptions;
  /** Host and other-origin rules, applied where requests are routed. */
  web: WebAccess;
  /** Lower-case name of the session header. */
  sessionHeader: string;
  counters: DataPlaneCounters;
  connections: ClientConnections;
  /** Least rate a request body must arrive at once herd reads it. */
  bodyRate: BodyRate;
  /**
   * Why the fast path could not open a connection for the request it then handed to node:http
   * with the socket (an acquire that failed, a wrong token...): node:http answers that request
   * with this error instead of trying again (a second wait for a worker, say).
   */
  failedOpens: WeakMap<Socket, unknown>;
}

/** "host:port" (IPv6 hosts may be bracketed) → parts for http.request. */
/** Human text for why a session's lease ended (its AbortSignal reason is a SessionEnd). */
export function endedReason(signal: AbortSignal): string {
  const end = signal.reason as { kind?: string; reason?: string } | undefined;
  if (end?.kind === undefined) return "session ended";
  return end.reason ? `session ${end.kind}: ${end.reason}` : `session ${end.kind}`;
}
