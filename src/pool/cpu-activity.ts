// Idle by activity (`idle_cpu`): a session with no open connection whose worker uses more CPU
// than the threshold is active, not idle — it is touched, so its idle clock (ttl) restarts.
// Samples each such session's worker every SAMPLE_FRACTION of the ttl: one CPU reading
// (cpu-usage.ts), compared with the previous one of the same worker.
//
// Invariants: the timer runs only when the pool has both idle_cpu and a ttl, never holds the
// process open, and stops at close(); `last` holds readings only of workers whose sessions were
// live at the previous sample. Single-threaded: a sample runs synchronously on the event loop.

import type { PoolOptions } from "../core/index.ts";
import type { PoolWorker } from "./pool-worker.ts";

/** Sampled this often within one ttl: a busy session is touched at the latest 2/5 into it. */
const SAMPLE_FRACTION = 5;
const MIN_SAMPLE_MS = 100;
const MAX_SAMPLE_MS = 10_000;

export interface ActivityDeps {
  /** The live sessions: id, worker, open leases. */
  sessions(): Iterable<{ id: string; worker: PoolWorker; leases: number }>;
  touch(id: string): void;
}

export class CpuActivity {
  private readonly last = new Map<PoolWorker, { us: number; at: number }>();
  private readonly timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly options: PoolOptions,
    private readonly deps: ActivityDeps,
  ) {
    if (options.idleCpu <= 0 || options.idleTtlMs <= 0) return;
    const every = Math.min(
      MAX_SAMPLE_MS,
      Math.max(MIN_SAMPLE_MS, options.idleTtlMs / SAMPLE_FRACTION),
    );
    this.timer = setInterval(() => this.sample(), every);
    this.timer.unref();
  }

  /** Touches every connection-less session whose worker used more than idle_cpu since last. */
  sample(now = performance.now()): void {
    const seen = new Map<PoolWorker, { us: number; at: number }>();
    for (const session of this.deps.sessions()) {
      if (session.leases > 0) continue; // an open connection already keeps it from idling
      const us = session.worker.cpuUsageUs?.();
      if (us === undefined) continue;
      const reading = { us, at: now };
      seen.set(session.worker, reading);
      const before = this.last.get(session.worker);
      if (!before || now <= before.at) continue;
      const cpus = (us - before.us) / ((now - before.at) * 1000);
      if (cpus > this.options.idleCpu) this.deps.touch(session.id);
    }
    this.last.clear();
    for (const [worker, reading] of seen) this.last.set(worker, reading);
  }

  close(): void {
    clearInterval(this.timer);
    this.last.clear();
  }
}
