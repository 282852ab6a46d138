// This node's liveness in the cluster, and fencing.
//
// Invariant: this node serves its sessions only while its lease is valid by its own clock:
// `valid()` is false from (start of the last successful renewal + lease − margin) on, which is
// before Redis can expire the alive key (Redis counts the lease from when it ran the renewal,
// later than our start). When the lease lapses the node kills its own sessions (the daemon,
// at once if it is running; the watchdog if the daemon is frozen), so no id ever has live
// workers on two nodes. A renewal that finds the key gone means the cluster declared this
// node dead: it fences too, then rejoins empty. A renewal that finds another Redis dataset
// (restart without persistence) rejoins and re-registers its live sessions (`rebuild`).
//
// Concurrency: one tick at a time (the next is scheduled when the previous settles).

import type { Logger } from "../core/index.ts";
import type { ClusterStore } from "./cluster-store.ts";
import type { FenceWatchdog } from "./fence-watchdog.ts";

export interface LeaseHooks {
  /** This node's record for placement (capacity per pool), as JSON. */
  record(): string;
  /** Kill every local session (it may run elsewhere next). */
  fence(reason: string): Promise<void>;
  /** Redis lost its data: register the live local sessions again. */
  rebuild(): Promise<void>;
  /** Every live node's record, read after each renewal. */
  observed(records: string[]): void;
}

export class NodeLease {
  private epoch = "";
  private lastOk = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** True once fenced for the current lapse (reset by the next successful renewal). */
  private fenced = false;
  readonly marginMs: number;

  constructor(
    private readonly store: ClusterStore,
    private readonly node: string,
    readonly leaseMs: number,
    private readonly hooks: LeaseHooks,
    private readonly watchdog: FenceWatchdog,
    private readonly logger: Logger,
  ) {
    this.marginMs = Math.min(1_000, Math.floor(leaseMs / 4));
  }

  async start(): Promise<void> {
    await this.join();
    this.schedule();
  }

  /** Epoch ms until which this node may serve its sessions. */
  deadline(): number {
    return this.lastOk + this.leaseMs - this.marginMs;
  }

  valid(): boolean {
    return !this.fenced && Date.now() < this.deadline();
  }

  /** Called on the hot path when a lapse is noticed before the next tick: fence now. */
  lapse(): void {
    if (!this.fenced) void this.fence("this node's cluster lease lapsed");
  }

  private async join(): Promise<void> {
    const sent = Date.now();
    this.epoch = await this.store.join(this.node, this.hooks.record(), this.leaseMs);
    this.renewed(sent);
  }

  private renewed(sent: number): void {
    this.lastOk = sent;
    this.fenced = false;
    this.watchdog.until(this.deadline());
  }

  private async fence(reason: string): Promise<void> {
    if (this.fenced) return;
    this.fenced = true;
    this.logger.warn({ reason }, `cluster: fencing: killing this node's sessions (${reason})`);
    await this.hooks.fence(reason);
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.tick(), Math.max(50, Math.floor(this.leaseMs / 4)));
  }

  private async tick(): Promise<void> {
    try {
      if (Date.now() >= this.deadline()) await this.fence("this node's cluster lease lapsed");
      const sent = Date.now();
      let result: Awaited<ReturnType<ClusterStore["renew"]>>;
      try {
        result = await this.store.renew(this.node, this.hooks.record(), this.leaseMs, this.epoch);
      } catch (err) {
        this.logger.debug({ err }, "cluster: lease renewal failed");
        return;
      }
      if (result === "ok") {
        this.renewed(sent);
      } else if (result === "expired") {
        await this.fence("the cluster declared this node dead (lease expired)");
        await this.join();
      } else {
        this.logger.warn({}, "cluster: Redis lost its data; re-registering this node's sessions");
        const wasValid = this.valid();
        await this.join();
        if (wasValid) await this.hooks.rebuild();
        else await this.hooks.fence("lease lapsed while Redis was away");
      }
      await this.store.reap(this.node).catch(() => {});
      this.hooks.observed(await this.store.nodes());
    } catch (err) {
      this.logger.warn({ err }, "cluster: lease tick failed");
    } finally {
      this.schedule();
    }
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }
}
