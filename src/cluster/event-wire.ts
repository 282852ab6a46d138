// Lifecycle events as they travel on herd:events (field e = JSON) and back. Pure. The revision
// is not in the JSON: it is the stream entry's id, given by Redis.

import type { HerdEvent, HerdEventType, SessionInfo } from "../core/index.ts";
import {
  decodeSession,
  encodeSession,
  type NodeAddresses,
  type RemoteSession,
} from "./session-codec.ts";

type Wire = Omit<HerdEvent, "revision" | "time" | "session"> & {
  /** ISO time; epoch ms on entries written by Redis-side scripts (node_lost, Redis's clock). */
  time: string | number;
  session?: string;
  /** On node_lost entries written by Redis-side scripts: the session as stored. */
  info?: string;
};

/** A stream entry read back: the event (with its revision) and its session's owner addresses. */
export interface WireEvent {
  event: HerdEvent & { node: string };
  remote: RemoteSession | undefined;
}

export function encodeEvent(event: HerdEvent, self: NodeAddresses): string {
  const { revision: _r, time, session, ...rest } = event;
  const wire: Wire = {
    ...rest,
    node: self.node,
    time: time.toISOString(),
    ...(session && { session: encodeSession(session, self) }),
  };
  return JSON.stringify(wire);
}

/** undefined for an entry this module did not write. */
export function decodeEvent(revision: number, json: string): WireEvent | undefined {
  let w: Wire;
  try {
    w = JSON.parse(json) as Wire;
  } catch {
    return undefined;
  }
  if (typeof w?.type !== "string" || typeof w.node !== "string") return undefined;
  const remote = decodeSession(w.session ?? w.info);
  const { info: _i, time, session: _s, ...rest } = w;
  const session: SessionInfo | undefined = remote?.info;
  const at = new Date(time);
  return {
    event: {
      ...rest,
      type: w.type as HerdEventType,
      node: w.node,
      revision,
      time: Number.isNaN(at.getTime()) ? new Date() : at,
      ...(session && { session }),
      ...(w.sessionId === undefined && session && { sessionId: session.id }),
    },
    remote,
  };
}
