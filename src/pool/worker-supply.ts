// Where a pool's new workers come from: the factory (real process trees, or a spec's fakes)
// and the prepared spares kept so that a cold start skips the slow cgroup join and sandbox
// set-up (see Worker.prepare). How many is the warm plan's `prepared` (warm-target.ts: the
// stage before the idle workers it also sizes; one today, for every policy).
//
// Invariant: spares + those being prepared never exceed the plan's `prepared`, counted when a
// preparation starts; once the pool's shutdown signal has fired none is prepared again, and
// every spare (and every one being prepared) is discarded. Single-threaded.

import type { Logger, PoolOptions, WorkerExit } from "../core/index.ts";
import type { CgroupTree } from "./cgroups.ts";
import type { HostCapabilities } from "./host-capabilities.ts";
import type { PoolWorker, WorkerFactory } from "./pool-worker.ts";
import { type PortReservations, Worker } from "./worker.ts";
import type { PoolSandbox, SandboxLifeline } from "./worker-sandbox.ts";

export interface SupplyDeps {
  caps: HostCapabilities;
  ports: PortReservations;
  cgroups: CgroupTree | undefined;
  /** Contains each worker beyond its process tree, when the pool's isolation asks for it. */
  sandbox?: PoolSandbox;
  logger: Logger;
  nextWorkerId(pool: string): string;
  /** Makes the pool's workers (default: real process trees, worker.ts). */
  workers?: WorkerFactory;
  /** What ends a worker's tree when the daemon dies (process-tree.ts; default pdeathsig). */
  dieWith?: "daemon" | "lifeline";
  /** With dieWith "lifeline": the generation's reaper, which a sandbox's host-wide claims name. */
  lifeline?: SandboxLifeline;
}

export class WorkerSupply {
  private readonly spares: PoolWorker[] = [];
  private readonly preparing = new Set<Promise<void>>();
  private readonly discarding = new Set<Promise<void>>();

  constructor(
    private readonly options: PoolOptions,
    private readonly deps: SupplyDeps,
    private readonly shutdown: AbortSignal,
    private readonly onFailure: (worker: PoolWorker, reason: string, exit?: WorkerExit) => void,
    /** Prepared spares wanted now (the warm plan's `prepared`). */
    private readonly wanted: () => number,
  ) {}

  /** A worker to start: a prepared spare if one is still alive, else a new one. */
  take(): PoolWorker {
    const worker = this.takeSpare() ?? this.newWorker();
    this.prepareSpare();
    return worker;
  }

  /** Keeps the plan's prepared spares, so the next starts skip the slow cgroup join. */
  prepareSpare(): void {
    const slowSetup = this.deps.cgroups !== undefined || this.deps.sandbox !== undefined;
    if (!slowSetup) return;
    while (!this.shutdown.aborted && this.spares.length + this.preparing.size < this.wanted()) {
      this.prepareOne();
    }
  }

  private prepareOne(): void {
    const worker = this.newWorker();
    const preparing: Promise<void> = worker
      .prepare()
      .then(
        () => {
          if (this.shutdown.aborted) return this.discard(worker);
          this.spares.push(worker);
        },
        (err: unknown) =>
          this.deps.logger.debug(
            { pool: this.options.name, err: String(err) },
            "could not prepare a spare worker",
          ),
      )
      .finally(() => {
        this.preparing.delete(preparing);
      });
    this.preparing.add(preparing);
  }

  /**
   * After the shutdown signal: discards the spares, and waits for those being prepared and for
   * every discard under way (a uid goes back only once its tree is gone).
   */
  async close(): Promise<void> {
    for (const spare of this.spares.splice(0)) this.discard(spare);
    await Promise.all([...this.preparing]);
    await Promise.all([...this.discarding]);
  }

  private discard(worker: PoolWorker): void {
    const discarding: Promise<void> = worker.discardPrepared().finally(() => {
      this.discarding.delete(discarding);
    });
    this.discarding.add(discarding);
  }

  private newWorker(): PoolWorker {
    const id = this.deps.nextWorkerId(this.options.name);
    const hooks = { onFailure: this.onFailure };
    if (this.deps.workers) return this.deps.workers(id, hooks);
    return new Worker(
      id,
      this.options,
      {
        caps: this.deps.caps,
        ports: this.deps.ports,
        ...(this.deps.cgroups ? { cgroups: this.deps.cgroups } : {}),
        ...(this.deps.sandbox ? { sandbox: this.deps.sandbox } : {}),
        ...(this.deps.dieWith ? { dieWith: this.deps.dieWith } : {}),
        ...(this.deps.lifeline ? { lifeline: this.deps.lifeline } : {}),
      },
      hooks,
    );
  }

  /** The oldest prepared spare still alive (see PoolWorker.prepare); dead ones are discarded. */
  private takeSpare(): PoolWorker | undefined {
    for (let spare = this.spares.shift(); spare; spare = this.spares.shift()) {
      if (spare.preparedAlive) return spare;
      this.discard(spare);
    }
    return undefined;
  }
}
