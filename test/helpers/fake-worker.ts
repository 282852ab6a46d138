// A fake pool worker (the pool's worker factory seam, PoolDeps.workers): no process, no port,
// each start finished when the spec says so (`finish`), counting its stops and stray kills. The
// Go herd library's stubWorker, for the pool's own specs (src/pool/pool*.spec.ts).
import type { WorkerExit } from "../../src/core/index.ts";
import type { PoolWorker, WorkerHooks, WorkerState } from "../../src/pool/index.ts";

export class FakeWorker implements PoolWorker {
  state: WorkerState = { kind: "starting" };
  readyAt = 0;
  readonly preparedAlive = false;
  readonly port = 0;
  pid = 0;
  stops = 0;
  strays = 0;
  private ready!: (error?: Error) => void;
  readonly started = new Promise<Error | undefined>((resolve) => {
    this.ready = resolve;
  });

  constructor(
    readonly id: string,
    readonly hooks: WorkerHooks,
    private readonly pidOf: number,
  ) {}

  get address(): string {
    return `127.0.0.1:${10_000 + this.pidOf}`;
  }

  async prepare(): Promise<void> {}
  async discardPrepared(): Promise<void> {}

  async start(): Promise<void> {
    const error = await this.started;
    if (error) {
      this.state = { kind: "stopped" };
      throw error;
    }
    this.pid = this.pidOf;
    this.state = { kind: "ready" };
    this.readyAt = Date.now();
  }

  /** Ends the start: ready, or failed with `error`. */
  finish(error?: Error): void {
    this.ready(error);
  }

  async killStrays(): Promise<number[]> {
    this.strays++;
    return [];
  }

  async stop(): Promise<WorkerExit | undefined> {
    this.stops++;
    this.state = { kind: "stopping" };
    await Promise.resolve();
    this.state = { kind: "stopped" };
    return undefined;
  }

  killNow(): void {}
}
