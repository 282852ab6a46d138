// What a session used (core's SessionUsage) and how long its acquire took (AcquireTiming): CPU and memory from its worker's cgroup, bytes
// from the data plane's counts (SessionTraffic, written through the session's leases).
//
// CPU is the worker's cgroup usage since the session began (the baseline is read when the
// session opens); memory is the cgroup's peak, restarted at the session's start where the host
// allows it (v1), else over the worker's life (v2 memory.peak). Stateless: reads files and
// the session's counters when asked (a listing or the session's end), never on a hot path.

import type { AcquireTiming, SessionTraffic, SessionUsage } from "../core/index.ts";
import type { PoolWorker } from "./pool-worker.ts";

export interface UsageBaseline {
  traffic: SessionTraffic;
  /** The worker's CPU seconds when the session began (undefined: the host cannot tell). */
  cpuAtStart: number | undefined;
}

/** Read when a session opens on `worker`. */
export function usageBaseline(worker: PoolWorker): UsageBaseline {
  worker.resetMemoryPeak?.();
  return {
    traffic: { rx: 0, tx: 0, open: new Set() },
    cpuAtStart: worker.cpuSeconds?.(),
  };
}

export function sessionUsage(worker: PoolWorker, baseline: UsageBaseline): SessionUsage {
  const { traffic, cpuAtStart } = baseline;
  let rxBytes = traffic.rx;
  let txBytes = traffic.tx;
  for (const pending of traffic.open) {
    const p = pending();
    rxBytes += p.rx;
    txBytes += p.tx;
  }
  const now = worker.resources?.() ?? {};
  return {
    ...(now.cpuSeconds !== undefined && cpuAtStart !== undefined
      ? { cpuSeconds: Math.max(0, now.cpuSeconds - cpuAtStart) }
      : {}),
    ...(now.memoryPeakBytes !== undefined ? { memoryPeakBytes: now.memoryPeakBytes } : {}),
    rxBytes,
    txBytes,
  };
}

/**
 * An acquire's timing as session_acquired reports it: from `since` (the acquire's arrival in
 * the pool, performance.now()) to now; a queued or cold acquire waited in the queue all along,
 * and its worker's start is part of it when that began after the acquire arrived.
 */
export function acquireTiming(
  outcome: AcquireTiming["outcome"],
  since: number,
  worker: PoolWorker,
): AcquireTiming {
  const seconds = (performance.now() - since) / 1_000;
  const arrivedAt = performance.timeOrigin + since;
  const boot = worker.boot;
  return {
    outcome,
    seconds,
    queuedSeconds: outcome === "warm" ? 0 : seconds,
    arrivedAt,
    ...(boot !== undefined && boot.startedAt >= arrivedAt ? { boot } : {}),
  };
}
