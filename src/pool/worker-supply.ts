// Where a pool's new workers come from: the factory (real process trees, or a spec's fakes)
// and the one prepared spare kept so that a cold start skips the slow cgroup join and sandbox
// set-up (see Worker.prepare).
//
// Invariant: at most one spare exists or is being prepared; once the pool's shutdown signal has
// fired none is prepared again, and the spare (or the one being prepared) is discarded.
// Single-threaded.

import type { Logger, PoolOptions, WorkerExit } from "../core/index.ts";
import type { CgroupTree } from "./cgroups.ts";
import type { HostCapabilities } from "./host-capabilities.ts";
import type { PoolWorker, WorkerFactory } from "./pool-worker.ts";
import { type PortReservations, Worker } from "./worker.ts";
import type { PoolSandbox } from "./worker-sandbox.ts";

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
}

export class WorkerSupply {
  private spare: PoolWorker | undefined;
  private preparing: Promise<void> | undefined;

  constructor(
    private readonly options: PoolOptions,
    private readonly deps: SupplyDeps,
    private readonly shutdown: AbortSignal,
    private readonly onFailure: (worker: PoolWorker, reason: string, exit?: WorkerExit) => void,
  ) {}

  /** A worker to start: the prepared spare if it is still alive, else a new one. */
  take(): PoolWorker {
    const worker = this.takeSpare() ?? this.newWorker();
    this.prepareSpare();
    return worker;
  }

  /** Keeps one prepared spare, so the next start skips the slow cgroup join. */
  prepareSpare(): void {
    const slowSetup = this.deps.cgroups !== undefined || this.deps.sandbox !== undefined;
    if (!slowSetup || this.spare || this.preparing || this.shutdown.aborted) return;
    const worker = this.newWorker();
    this.preparing = worker
      .prepare()
      .then(
        () => {
          if (this.shutdown.aborted) return worker.discardPrepared();
          this.spare = worker;
        },
        (err: unknown) =>
          this.deps.logger.debug(
            { pool: this.options.name, err: String(err) },
            "could not prepare a spare worker",
          ),
      )
      .finally(() => {
        this.preparing = undefined;
      });
  }

  /** After the shutdown signal: discards the spare, and waits for one being prepared. */
  async close(): Promise<void> {
    await this.spare?.discardPrepared();
    this.spare = undefined;
    await this.preparing;
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
      },
      hooks,
    );
  }

  /** The prepared spare, if it is still alive (see PoolWorker.prepare). */
  private takeSpare(): PoolWorker | undefined {
    const spare = this.spare;
    this.spare = undefined;
    if (spare && !spare.preparedAlive) {
      void spare.discardPrepared();
      return undefined;
    }
    return spare;
  }
}
