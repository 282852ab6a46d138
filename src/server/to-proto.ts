// Pool vocabulary → herd.v1 messages. Pure functions: the pool's plain data in, messages out.

import { create } from "@bufbuild/protobuf";
import { durationFromMs, timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  type GetStatsResponse,
  GetStatsResponseSchema,
  type Session,
  type SessionEvent,
  SessionEventSchema,
  SessionEventType,
  SessionSchema,
  WorkerExitSchema,
} from "../../gen/herd/v1/herd_pb.ts";
import type {
  HerdEvent,
  HerdEventType,
  HerdStats,
  PoolStats,
  SessionInfo,
  TenantUsage,
  WorkerExit,
} from "../core/index.ts";

export function sessionToProto(s: SessionInfo, dataPlaneUrl: string): Session {
  return create(SessionSchema, {
    sessionId: s.id,
    pool: s.pool,
    workerId: s.workerId,
    workerPid: s.workerPid,
    dataPlaneUrl,
    token: s.token,
    createdAt: timestampFromDate(s.createdAt),
    lastActiveAt: timestampFromDate(s.lastActiveAt),
    expiresAt: s.expiresAt && timestampFromDate(s.expiresAt),
    connections: s.connections,
    labels: { ...s.labels },
    reconnectDeadline: s.reconnectDeadline && timestampFromDate(s.reconnectDeadline),
    node: s.node ?? "",
    tenant: s.tenant ?? "",
    usage: s.usage && {
      cpuSeconds: s.usage.cpuSeconds,
      memoryPeakBytes:
        s.usage.memoryPeakBytes === undefined ? undefined : BigInt(s.usage.memoryPeakBytes),
      rxBytes: BigInt(s.usage.rxBytes),
      txBytes: BigInt(s.usage.txBytes),
    },
  });
}

const EVENT_TYPES: Readonly<Record<HerdEventType, SessionEventType>> = {
  session_acquired: SessionEventType.SESSION_ACQUIRED,
  session_released: SessionEventType.SESSION_RELEASED,
  session_expired: SessionEventType.SESSION_EXPIRED,
  session_lost: SessionEventType.SESSION_LOST,
  worker_started: SessionEventType.WORKER_STARTED,
  worker_stopped: SessionEventType.WORKER_STOPPED,
  worker_unhealthy: SessionEventType.WORKER_UNHEALTHY,
  queue_changed: SessionEventType.QUEUE_CHANGED,
  connection_opened: SessionEventType.CONNECTION_OPENED,
  connection_closed: SessionEventType.CONNECTION_CLOSED,
  warm_target_changed: SessionEventType.WARM_TARGET_CHANGED,
};

function exitToProto(exit: WorkerExit) {
  return create(WorkerExitSchema, {
    exitCode: exit.code ?? undefined,
    signal: exit.signal ?? "",
    oom: exit.oom,
    stderrTail: [...exit.stderrTail],
  });
}

export function eventToProto(e: HerdEvent, dataPlaneUrl: string): SessionEvent {
  return create(SessionEventSchema, {
    revision: BigInt(e.revision),
    type: EVENT_TYPES[e.type],
    session: e.session && sessionToProto(e.session, dataPlaneUrl),
    workerId: e.workerId ?? e.session?.workerId ?? "",
    reason: e.reason ?? "",
    time: timestampFromDate(e.time),
    pool: e.pool,
    sessionId: e.sessionId ?? e.session?.id ?? "",
    workerPid: e.workerPid ?? e.session?.workerPid ?? 0,
    exit: e.exit && exitToProto(e.exit),
    queued: e.queued ?? 0,
    warmTarget: e.warmTarget ?? 0,
    node: e.node ?? e.session?.node ?? "",
    tenant: e.session?.tenant ?? "",
  });
}

/** One SNAPSHOT event per live session, all at the revision the snapshot was taken. */
export function snapshotEvent(
  s: SessionInfo,
  revision: number,
  dataPlaneUrl: string,
): SessionEvent {
  return create(SessionEventSchema, {
    revision: BigInt(revision),
    type: SessionEventType.SNAPSHOT,
    session: sessionToProto(s, dataPlaneUrl),
    workerId: s.workerId,
    time: timestampFromDate(new Date()),
    pool: s.pool,
    sessionId: s.id,
    workerPid: s.workerPid,
    tenant: s.tenant ?? "",
  });
}

export function snapshotCompleteEvent(revision: number): SessionEvent {
  return create(SessionEventSchema, {
    revision: BigInt(revision),
    type: SessionEventType.SNAPSHOT_COMPLETE,
    time: timestampFromDate(new Date()),
  });
}

export function statsToProto(
  stats: HerdStats,
  instanceId: string,
  tenants: readonly TenantUsage[] = [],
): GetStatsResponse {
  return create(GetStatsResponseSchema, {
    instanceId,
    tenants: tenants.map((t) => ({ ...t, pools: [...t.pools] })),
    pools: stats.pools.map(poolToProto),
    node: {
      ...stats.node,
      memoryTotalBytes: BigInt(stats.node.memoryTotalBytes),
      memoryAvailableBytes: BigInt(stats.node.memoryAvailableBytes),
    },
    clusterNodes: (stats.cluster?.nodes ?? []).map((n) => ({
      node: n.node,
      dataAddress: n.dataAddress,
      controlAddress: n.controlAddress,
      pools: n.pools.map(poolToProto),
      renewedAt: timestampFromDate(n.renewedAt),
      lease: durationFromMs(n.leaseMs),
      draining: n.draining === true,
    })),
    clusterPools: (stats.cluster?.pools ?? []).map(poolToProto),
  });
}

/** Durations become Duration messages, set only when there is one. */
function poolToProto({ restartBackoffMs, bootMs, ...p }: PoolStats) {
  return {
    ...p,
    ...(restartBackoffMs > 0 && { restartBackoff: durationFromMs(restartBackoffMs) }),
    ...(bootMs > 0 && { bootTime: durationFromMs(bootMs) }),
  };
}
