// This node's liveness in the cluster, and fencing.
//
// Invariant: this node serves its sessions only while its lease is valid by its own clock:
// `valid()` is false from (start of the last successful renewal + lease − margin) on, which is
// before Redis can expire the alive key (Redis counts the lease from when it ran the renewal,
// later than our start). When the lease lapses the node kills its own sessions: the daemon
// itself, by a timer set to that very deadline (and on the hot path, should it notice first),
// with the end reason `fenced: …`; the watchdog only if the daemon is frozen, half a margin
// later (so a live daemon's own fencing always comes first and its kills are never taken for
// worker crashes), still before Redis can expire the key. So no id ever has live workers on
// two nodes. A renewal that finds the key gone means the cluster declared this node dead: it
// fences too, then rejoins empty. A renewal that finds another Redis dataset (restart without
// persistence) rejoins and re-registers its live sessions (`rebuild`).
//
// Renewals run every lease/8, and at once when the Redis connection comes back or the node's
// record changes in a way others must see now (a drain): a Redis outage shorter than about
// lease − margin − lease/8 − the reconnect delay (≤ 250 ms) costs no session (docs/cluster.md).
//
// Concurrency: one tick at a time (a renewal asked for during a tick runs right after it).
//
// Restart in place (src/cli/restart.ts): `pause` stops the renewals (after the tick under way,
// if any) and returns what a successor needs to renew on (`LeaseHandOff`); the successor starts
// with `start(handOff)`: it renews at once on the same epoch, without joining (a join would drop
// the node's sessions as node_lost). So at most one process renews the lease at any instant:
// the old one pauses before it sends the state, and `resume`s only once the new one has exited.
// A hand-over longer than the lease lapses it: the successor then fences, like any node.

import type { Logger } from "../core/index.ts";
import type { FenceWatchdog } from "./fence-watchdog.ts";
import type { RedisNodes, RenewResult } from "./redis-nodes.ts";

/** The records a renewal writes and reads back (capacity-ledger.ts). */
export interface LeaseRecords {
  /** This node's record for placement (capacity per pool), signed. */
  record(): string;
  /** Every live node's record, read after each renewal. */
  observe(records: string[]): void;
}

/** What a lapse or a Redis that lost its data does to this node's sessions (local-claims.ts). */
export interface LeaseFencing {
  /** Kill every local session (it may run elsewhere next). */
  fenceAll(reason: string): Promise<void>;
  /** Redis lost its data: register the live local sessions again. */
  rebuild(): Promise<void>;
}

type Ticking =
  | { kind: "idle"; timer: NodeJS.Timeout | undefined }
  | { kind: "ticking"; again: boolean; paused?: () => void }
  | { kind: "paused" };

/** What a restart's successor renews the lease on. */
export interface LeaseHandOff {
  epoch: string;
  /** Start (epoch ms) of the last successful renewal. */
  lastOk: number;
}

export class NodeLease {
  private epoch = "";
  private lastOk = 0;
  private ticking: Ticking = { kind: "idle", timer: undefined };
  /** Fires at the deadline: the daemon fences itself before the watchdog would. */
  private fenceTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** True once fenced for the current lapse (reset by the next successful renewal). */
  private fenced = false;
  readonly marginMs: number;
  readonly intervalMs: number;

  constructor(
    private readonly store: RedisNodes,
    private readonly node: string,
    readonly leaseMs: number,
    private readonly records: LeaseRecords,
    private readonly fencing: LeaseFencing,
    private readonly watchdog: FenceWatchdog,
    private readonly logger: Logger,
  ) {
    this.marginMs = Math.min(1_000, Math.floor(leaseMs / 4));
    this.intervalMs = Math.max(50, Math.floor(leaseMs / 8));
  }

  /**
   * Joins (or, a restart's successor, renews the predecessor's lease at once), and knows every
   * live node's record before it returns (ready means ready).
   */
  async start(handOff?: LeaseHandOff): Promise<void> {
    if (handOff) {
      this.epoch = handOff.epoch;
      this.renewed(handOff.lastOk);
      await this.tick();
      return;
    }
    await this.join();
    this.records.observe(await this.store.nodes());
    this.schedule(this.intervalMs);
  }

  /** Stops renewing (once the tick under way is done): a successor renews from the result. */
  async pause(): Promise<LeaseHandOff> {
    const t = this.ticking;
    if (t.kind === "ticking") {
      await new Promise<void>((resolve) => {
        t.paused = resolve;
      });
    } else if (t.kind === "idle") {
      clearTimeout(t.timer);
    }
    this.ticking = { kind: "paused" };
    clearTimeout(this.fenceTimer);
    return { epoch: this.epoch, lastOk: this.lastOk };
  }

  /** The successor exited before it served: renew again (fencing if the lease lapsed since). */
  resume(): void {
    if (this.ticking.kind === "paused" && !this.stopped) void this.tick();
  }

  /** Epoch ms until which this node may serve its sessions. */
  deadline(): number {
    return this.lastOk + this.leaseMs - this.marginMs;
  }

  /**
   * Paused (a restart handed the sessions over): the successor renews and fences; this process
   * only answers, to the connections it still has, for sessions it no longer owns.
   */
  valid(): boolean {
    if (this.ticking.kind === "paused") return true;
    return !this.fenced && Date.now() < this.deadline();
  }

  /**
   * Why a worker of this node died unasked, if the watchdog may have killed it: its deadline
   * has passed without a renewal (the daemon was frozen past its own fencing). Else undefined.
   */
  watchdogCause(): string | undefined {
    if (this.lastOk === 0 || Date.now() < this.watchdogDeadline()) return undefined;
    return "fenced: this node's cluster lease lapsed (killed by the fencing watchdog)";
  }

  private watchdogDeadline(): number {
    return this.deadline() + Math.floor(this.marginMs / 2);
  }

  /** Called on the hot path when a lapse is noticed before the next tick: fence now. */
  lapse(): void {
    if (!this.fenced && this.ticking.kind !== "paused")
      void this.fence("this node's cluster lease lapsed");
  }

  /** Renew now (Redis is back, or this node's record changed): not on the next tick. */
  renewNow(): void {
    if (this.stopped || this.ticking.kind === "paused") return;
    if (this.ticking.kind === "ticking") {
      this.ticking.again = true;
      return;
    }
    clearTimeout(this.ticking.timer);
    void this.tick();
  }

  private async join(): Promise<void> {
    const sent = Date.now();
    this.epoch = await this.store.join(this.node, this.records.record(), this.leaseMs);
    this.renewed(sent);
  }

  private renewed(sent: number): void {
    this.lastOk = sent;
    this.fenced = false;
    const deadline = this.deadline();
    this.watchdog.until(this.watchdogDeadline());
    clearTimeout(this.fenceTimer);
    if (this.stopped) return;
    this.fenceTimer = setTimeout(
      () => {
        if (!this.stopped && Date.now() >= this.deadline()) this.lapse();
      },
      Math.max(0, deadline - Date.now()),
    );
  }

  private async fence(reason: string): Promise<void> {
    if (this.fenced) return;
    this.fenced = true;
    this.logger.warn({ reason }, `cluster: fencing: killing this node's sessions (${reason})`);
    await this.fencing.fenceAll(reason);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    const timer = setTimeout(() => void this.tick(), ms);
    this.ticking = { kind: "idle", timer };
  }

  private async tick(): Promise<void> {
    this.ticking = { kind: "ticking", again: false };
    try {
      if (Date.now() >= this.deadline()) await this.fence("this node's cluster lease lapsed");
      const sent = Date.now();
      let result: RenewResult;
      try {
        result = await this.store.renew(this.node, this.records.record(), this.leaseMs, this.epoch);
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
        if (wasValid) await this.fencing.rebuild();
        else await this.fencing.fenceAll("lease lapsed while Redis was away");
      }
      await this.store.reap(this.node).catch(() => {});
      this.records.observe(await this.store.nodes());
    } catch (err) {
      this.logger.warn({ err }, "cluster: lease tick failed");
    } finally {
      const t = this.ticking;
      if (t.kind === "ticking" && t.paused) {
        this.ticking = { kind: "paused" };
        t.paused();
      } else {
        this.schedule(t.kind === "ticking" && t.again ? 0 : this.intervalMs);
      }
    }
  }

  stop(): void {
    this.stopped = true;
    const t = this.ticking;
    if (t.kind === "idle") clearTimeout(t.timer);
    if (t.kind === "ticking") t.paused?.();
    clearTimeout(this.fenceTimer);
  }
}
