// Sessions as they travel between nodes (Redis hash `info`, stream entries): SessionInfo as
// JSON plus the owner's advertised addresses, signed, the token sealed (signed-record.ts), and
// back. Pure.

import type { SessionInfo } from "../core/index.ts";
import type { RecordKeys } from "./signed-record.ts";

/** What another node needs to know about a session it does not run. */
export interface RemoteSession {
  info: SessionInfo;
  /** The owner's data plane (host:port): where this node forwards the session's traffic. */
  data: string;
  /** The owner's control plane (host:port): where Release and friends are forwarded. */
  control: string;
}

export interface NodeAddresses {
  node: string;
  data: string;
  control: string;
}

type Wire = Omit<SessionInfo, "createdAt" | "lastActiveAt" | "expiresAt" | "peer" | "token"> & {
  /** The token, sealed: a reader of Redis does not learn it. */
  token: string;
  createdAt: string;
  lastActiveAt: string;
  expiresAt?: string;
  data: string;
  control: string;
};

export function encodeSession(s: SessionInfo, owner: NodeAddresses, keys: RecordKeys): string {
  const wire: Wire = {
    id: s.id,
    pool: s.pool,
    workerId: s.workerId,
    workerPid: s.workerPid,
    workerAddress: s.workerAddress,
    token: keys.sealToken(s.id, s.token),
    createdAt: s.createdAt.toISOString(),
    lastActiveAt: s.lastActiveAt.toISOString(),
    ...(s.expiresAt && { expiresAt: s.expiresAt.toISOString() }),
    connections: s.connections,
    labels: s.labels,
    ...(s.tenant !== undefined && { tenant: s.tenant }),
    node: owner.node,
    data: owner.data,
    control: owner.control,
  };
  return keys.sign("session", JSON.stringify(wire));
}

/** undefined for anything that is not a session a node of this cluster wrote. */
export function decodeSession(
  signed: string | undefined,
  keys: RecordKeys,
): RemoteSession | undefined {
  const json = signed && keys.verify("session", signed);
  if (!json) return undefined;
  let w: Wire;
  try {
    w = JSON.parse(json) as Wire;
  } catch {
    return undefined;
  }
  if (typeof w?.id !== "string" || typeof w.data !== "string" || typeof w.node !== "string") {
    return undefined;
  }
  const token = typeof w.token === "string" ? keys.openToken(w.id, w.token) : undefined;
  if (token === undefined) return undefined;
  return {
    info: {
      id: w.id,
      pool: w.pool,
      workerId: w.workerId,
      workerPid: w.workerPid,
      workerAddress: w.workerAddress,
      token,
      createdAt: new Date(w.createdAt),
      lastActiveAt: new Date(w.lastActiveAt),
      ...(w.expiresAt && { expiresAt: new Date(w.expiresAt) }),
      connections: w.connections,
      labels: w.labels ?? {},
      ...(typeof w.tenant === "string" && { tenant: w.tenant }),
      node: w.node,
    },
    data: w.data,
    control: w.control,
  };
}
