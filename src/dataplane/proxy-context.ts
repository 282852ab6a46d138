// What both forwarding paths share (the fast path's fast/fast-context.ts and node:http's
// node-http/node-http-context.ts add what only one of them uses): the directory, the access
// rules, the client connections' leases and a few counters. Built once by startDataPlane; the
// counters are plain numbers mutated on the event loop thread only.

import type { Logger, SessionRoutes, Tracer } from "../core/index.ts";
import type { BodyRate } from "./body-deadline.ts";
import type { ClientConnections } from "./client-connections.ts";
import type { DataPlaneCounters } from "./data-plane-counters.ts";
import type { NativeRelay } from "./native-relay.ts";
import type { SessionAccess } from "./session-access.ts";
import type { WebAccess } from "./web-access.ts";

export interface ProxyContext {
  directory: SessionRoutes;
  logger: Logger;
  /** Where a routed request gets its session and lease. */
  access: SessionAccess;
  /** Host and other-origin rules, applied where requests are routed. */
  web: WebAccess;
  /** Lower-case name of the session header. */
  sessionHeader: string;
  counters: DataPlaneCounters;
  connections: ClientConnections;
  /** Least rate a request body must arrive at once herd reads it. */
  bodyRate: BodyRate;
  /** Set when tracing is on; the one check a request pays when it is off. */
  tracer?: Tracer;
  /** Set when open WebSocket tunnels go to the native relay instead of `pipe`. */
  nativeRelay?: NativeRelay;
}

/** Human text for why a session's lease ended (its AbortSignal reason is a SessionEnd). */
export function endedReason(signal: AbortSignal): string {
  const end = signal.reason as { kind?: string; reason?: string } | undefined;
  if (end?.kind === undefined) return "session ended";
  return end.reason ? `session ${end.kind}: ${end.reason}` : `session ${end.kind}`;
}
