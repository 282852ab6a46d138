// Prometheus metrics of the daemon, on a registry of its own (several daemons can share a
// process in tests). Pool gauges are read from stats() at scrape time, so they are never
// stale; counters of ended sessions follow the event stream; RPC counts and acquire latency
// are recorded by the control plane as calls finish; the pools' latency histograms and the
// usage of ended sessions follow the event stream too (pool-telemetry.ts).
//
// Invariant: the event subscription is always open while the metrics are: if the pool cuts it
// off for falling behind (resource_exhausted), it is reopened at once (counts in the gap are
// lost, the daemon is never slowed down). The first one replays the retained events from the
// daemon's start, so what happened before the control plane existed (a pool's `min` workers
// starting) is counted too.

import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { EventSubscription, HerdEvent, Logger, SessionDirectory } from "../core/index.ts";
import { isHerdError } from "../core/index.ts";
import { PoolTelemetry } from "./pool-telemetry.ts";

export class ControlPlaneMetrics {
  readonly registry = new Registry();
  private readonly acquireSeconds: Histogram<"pool">;
  private readonly rpcs: Counter<"method" | "code">;
  private readonly ended: Counter<"pool" | "reason">;
  private readonly telemetry: PoolTelemetry;
  private subscription: EventSubscription | undefined;
  private closed = false;

  /** herd_control_streams: the open WatchSessions and HoldSession streams (caller-limits.ts). */
  countStreams(count: (kind: "watchers" | "holds") => number): void {
    new Gauge({
      name: "herd_control_streams",
      help: "Open WatchSessions (kind=watchers) and HoldSession (kind=holds) streams.",
      labelNames: ["kind"],
      registers: [this.registry],
      collect() {
        this.set({ kind: "watchers" }, count("watchers"));
        this.set({ kind: "holds" }, count("holds"));
      },
    });
  }

  constructor(
    private readonly directory: SessionDirectory,
    private readonly logger: Logger,
  ) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.acquireSeconds = new Histogram({
      name: "herd_acquire_duration_seconds",
      help: "Time from an acquire request to its session (control plane), by pool.",
      labelNames: ["pool"],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.rpcs = new Counter({
      name: "herd_rpc_requests_total",
      help: "Control-plane RPCs finished, by method and status code.",
      labelNames: ["method", "code"],
      registers,
    });
    this.ended = new Counter({
      name: "herd_sessions_ended_total",
      help: "Sessions ended, by pool and reason (released, idle, max_lifetime, lost, ...).",
      labelNames: ["pool", "reason"],
      registers,
    });
    const poolGauge = (name: string, help: string, pick: (p: PoolRow) => number, extra?: string) =>
      new Gauge({
        name,
        help,
        labelNames: extra ? ["pool", extra] : ["pool"],
        registers,
        collect() {
          this.reset();
          for (const p of directory.stats().pools) this.set({ pool: p.name }, pick(p));
        },
      });
    poolGauge("herd_pool_sessions", "Live sessions per pool.", (p) => p.sessions);
    poolGauge("herd_pool_queued", "Acquires waiting in the pool's queue.", (p) => p.queued);
    poolGauge("herd_pool_min_workers", "Configured minimum of workers.", (p) => p.min);
    poolGauge("herd_pool_max_workers", "Configured maximum of workers.", (p) => p.max);
    poolGauge(
      "herd_pool_crash_streak",
      "Consecutive worker crashes (0: not crash-looping).",
      (p) => p.crashStreak,
    );
    poolGauge(
      "herd_pool_warm_target",
      "warm: auto: idle workers the pool keeps for its current demand.",
      (p) => p.warmTarget,
    );
    poolGauge(
      "herd_pool_arrival_rate",
      "warm: auto: new sessions per second the warm target is sized for.",
      (p) => p.arrivalRate,
    );
    poolGauge(
      "herd_pool_boot_seconds",
      "Measured boot time of the pool's workers, spawn to ready (moving average; 0: none yet).",
      (p) => p.bootMs / 1000,
    );
    new Gauge({
      name: "herd_pool_workers",
      help: "Worker processes per pool and state (idle, busy, starting).",
      labelNames: ["pool", "state"],
      registers,
      collect() {
        this.reset();
        for (const p of directory.stats().pools) {
          this.set({ pool: p.name, state: "idle" }, p.workersIdle);
          this.set({ pool: p.name, state: "busy" }, p.workersBusy);
          this.set({ pool: p.name, state: "starting" }, p.workersStarting);
        }
      },
    });
    new Gauge({
      name: "herd_node_memory_available_bytes",
      help: "Memory available to new processes on this machine.",
      registers,
      collect() {
        this.set(directory.stats().node.memoryAvailableBytes);
      },
    });
    this.telemetry = new PoolTelemetry(registers);
    this.follow(true);
  }

  observeAcquire(pool: string, seconds: number): void {
    this.acquireSeconds.observe({ pool }, seconds);
  }

  countRpc(method: string, code: string): void {
    this.rpcs.inc({ method, code });
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  close(): void {
    this.closed = true;
    this.subscription?.close();
  }

  /**
   * `fromStart`: the first subscription replays the events retained from the daemon's start
   * (workers of a pool's `min` started before the control plane, hence these metrics, existed);
   * one reopened after falling behind starts from now, never counting an event twice.
   */
  private follow(fromStart = false): void {
    const sub = this.subscribeFrom(fromStart);
    this.subscription = sub;
    (async () => {
      try {
        for await (const event of sub) this.count(event);
      } catch (err) {
        if (!isHerdError(err, "resource_exhausted")) throw err;
        this.logger.warn({}, "metrics fell behind the event stream; some ended sessions uncounted");
        if (!this.closed) this.follow();
      }
    })().catch((err: unknown) => this.logger.error({ err }, "metrics event stream failed"));
  }

  private subscribeFrom(fromStart: boolean): EventSubscription {
    const opts = { bufferLimit: 65_536 };
    if (!fromStart) return this.directory.subscribe(opts);
    try {
      return this.directory.subscribe({ ...opts, sinceRevision: 0 });
    } catch (err) {
      // The history no longer reaches back to the start: count from now.
      if (!isHerdError(err, "out_of_range")) throw err;
      this.logger.warn({}, "metrics: the events before the control plane started are gone");
      return this.directory.subscribe(opts);
    }
  }

  private count(e: HerdEvent): void {
    let reason: string | undefined;
    // A release by the data plane is the client's disconnect, counted apart from releases asked for.
    if (e.type === "session_released")
      reason = e.reason === "disconnect" ? "disconnect" : "released";
    else if (e.type === "session_lost") reason = e.exit?.oom ? "oom" : "lost";
    else if (e.type === "session_expired") {
      // Expiry reasons are a small fixed set; anything unexpected is folded to keep labels bounded.
      reason = e.reason && /^[a-z_]{1,32}$/.test(e.reason) ? e.reason : "expired";
    }
    if (reason) this.ended.inc({ pool: e.pool, reason });
    this.telemetry.count(e, reason);
  }
}

type PoolRow = ReturnType<SessionDirectory["stats"]>["pools"][number];
