// Lifecycle events as they travel on herd:events (field e = JSON) and back. Pure. The revision
// is not in the JSON: it is the stream entry's id, given by Redis.
//
// Trust: a node signs each entry it appends (signed-record.ts); the only unsigned entries are
// the node_lost ones Redis-side scripts write on reaping, and those are believed only when
// they carry the lost session's own signed record, naming the same node and id. Anything else
// is dropped, so a writer of Redis cannot make nodes learn a session or watchers see an event
// no node wrote (it can replay a genuine one: that can only make nodes forget a session).

import type { HerdEvent, HerdEventType, SessionInfo } from "../core/index.ts";
import {
  decodeSession,
  encodeSession,
  type NodeAddresses,
  type RemoteSession,
} from "./session-codec.ts";
import type { RecordKeys } from "./signed-record.ts";

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

export function encodeEvent(event: HerdEvent, self: NodeAddresses, keys: RecordKeys): string {
  const { revision: _r, time, session, ...rest } = event;
  const wire: Wire = {
    ...rest,
    node: self.node,
    time: time.toISOString(),
    ...(session && { session: encodeSession(session, self, keys) }),
  };
  return keys.sign("event", JSON.stringify(wire));
}

/** undefined for an entry no node of this cluster wrote (see the header). */
export function decodeEvent(
  revision: number,
  entry: string,
  keys: RecordKeys,
): WireEvent | undefined {
  const signed = keys.verify("event", entry);
  let w: Wire;
  try {
    w = JSON.parse(signed ?? entry) as Wire;
  } catch {
    return undefined;
  }
  if (typeof w?.type !== "string" || typeof w.node !== "string") return undefined;
  const remote = decodeSession(w.session ?? w.info, keys);
  if (
    signed === undefined &&
    !(
      w.type === "session_lost" &&
      w.reason === "node_lost" &&
      remote?.info.node === w.node &&
      remote.info.id === w.sessionId
    )
  ) {
    return undefined;
  }
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
