// The pools' latency histograms and what ended sessions used, from the event stream: acquire
// latency by outcome and the queue wait (session_acquired's timing), worker start
// (worker_started), and on a session's end its duration by end reason and its usage as
// counters (CPU seconds, bytes) and a histogram (memory peak), by pool and tenant (none on the
// operator's sessions; the tenants are configured, so the label stays bounded). Buckets span what was
// measured here (docs/operations.md, "Billing and monitoring"): a warm acquire takes tens of
// microseconds in the pool, a cold one a worker's boot (tens of ms to seconds), a queued one up
// to acquire_timeout. Stateless beyond prom-client's series; labels stay bounded (pool, a fixed
// outcome set, the folded end reasons ControlPlaneMetrics computes).

import { Counter, Histogram, type Registry } from "prom-client";
import type { HerdEvent } from "../core/index.ts";

const LATENCY_BUCKETS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
  30, 60,
];
const START_BUCKETS = [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const DURATION_BUCKETS = [0.1, 1, 5, 15, 30, 60, 300, 900, 1800, 3600, 14_400, 86_400];
const MiB = 2 ** 20;
const MEMORY_BUCKETS = [16, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16_384].map((m) => m * MiB);

export class PoolTelemetry {
  private readonly acquire: Histogram<"pool" | "outcome">;
  private readonly queueWait: Histogram<"pool">;
  private readonly workerStart: Histogram<"pool">;
  private readonly duration: Histogram<"pool" | "reason">;
  private readonly cpu: Counter<"pool" | "tenant">;
  private readonly rx: Counter<"pool" | "tenant">;
  private readonly tx: Counter<"pool" | "tenant">;
  private readonly memoryPeak: Histogram<"pool" | "tenant">;

  constructor(registers: Registry[]) {
    this.acquire = new Histogram({
      name: "herd_pool_acquire_seconds",
      help: "Time from an acquire's arrival in the pool to its session, by pool and outcome (warm: an idle worker; cold: one started for it; queued: one freed while it waited at max).",
      labelNames: ["pool", "outcome"],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.queueWait = new Histogram({
      name: "herd_pool_queue_wait_seconds",
      help: "Time an acquire that found no idle worker waited in the pool's queue, by pool.",
      labelNames: ["pool"],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.workerStart = new Histogram({
      name: "herd_worker_start_seconds",
      help: "Time from a worker's start to ready, by pool.",
      labelNames: ["pool"],
      buckets: START_BUCKETS,
      registers,
    });
    this.duration = new Histogram({
      name: "herd_session_duration_seconds",
      help: "Life of ended sessions, by pool and end reason.",
      labelNames: ["pool", "reason"],
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.cpu = new Counter({
      name: "herd_session_cpu_seconds_total",
      help: "CPU seconds used by ended sessions' workers (cgroup cpu.stat), by pool and tenant; sessions whose host cannot tell add nothing.",
      labelNames: ["pool", "tenant"],
      registers,
    });
    this.rx = new Counter({
      name: "herd_session_rx_bytes_total",
      help: "Bytes the data plane received from ended sessions' clients, by pool and tenant.",
      labelNames: ["pool", "tenant"],
      registers,
    });
    this.tx = new Counter({
      name: "herd_session_tx_bytes_total",
      help: "Bytes the data plane sent to ended sessions' clients, by pool and tenant.",
      labelNames: ["pool", "tenant"],
      registers,
    });
    this.memoryPeak = new Histogram({
      name: "herd_session_memory_peak_bytes",
      help: "Peak memory of ended sessions' workers (cgroup), by pool and tenant.",
      labelNames: ["pool", "tenant"],
      buckets: MEMORY_BUCKETS,
      registers,
    });
  }

  /** `ended`: the end reason ControlPlaneMetrics folded for a session's end event. */
  count(e: HerdEvent, ended: string | undefined): void {
    const pool = e.pool;
    if (e.type === "session_acquired" && e.acquire) {
      this.acquire.observe({ pool, outcome: e.acquire.outcome }, e.acquire.seconds);
      if (e.acquire.outcome !== "warm") this.queueWait.observe({ pool }, e.acquire.queuedSeconds);
    } else if (e.type === "worker_started" && e.startSeconds !== undefined) {
      this.workerStart.observe({ pool }, e.startSeconds);
    } else if (ended && e.session) {
      const seconds = (e.time.getTime() - e.session.createdAt.getTime()) / 1_000;
      this.duration.observe({ pool, reason: ended }, Math.max(0, seconds));
      const usage = e.session.usage;
      if (!usage) return;
      const { tenant } = e.session;
      const by = tenant === undefined ? { pool } : { pool, tenant };
      if (usage.cpuSeconds !== undefined) this.cpu.inc(by, usage.cpuSeconds);
      if (usage.memoryPeakBytes !== undefined) this.memoryPeak.observe(by, usage.memoryPeakBytes);
      this.rx.inc(by, usage.rxBytes);
      this.tx.inc(by, usage.txBytes);
    }
  }
}
