// A worker: one process tree on one port, serving at most one session at a time; the Pool's
// PoolWorker (pool-worker.ts, which says who moves it through which states).
//
// The worker reports what happens to it through `WorkerHooks`, once: an exit it did not ask
// for, or a health/limit failure. Everything runs on the event loop; there is no locking
// because no method awaits while holding a half-updated state.

import type { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import type { PoolOptions, WorkerBoot, WorkerExit } from "../core/index.ts";
import { formatWorkerAddress, HerdError, STDERR_MARK, type WorkerEndpoint } from "../core/index.ts";
import { type CgroupTree, WorkerCgroup } from "./cgroups.ts";
import { killStrays } from "./clean-reuse.ts";
import { cgroupCpuUs, processesCpuUs } from "./cpu-usage.ts";
import { ephemeralPort } from "./ephemeral-port.ts";
import type { HostCapabilities } from "./host-capabilities.ts";
import { LineBuffer } from "./line-buffer.ts";
import {
  type ListenerOwner,
  listensInOwnNetwork,
  ownsListener,
  treeListeners,
} from "./listener-owner.ts";
import type { OutputRing } from "./output-ring.ts";
import type {
  HandedWorker,
  PoolWorker,
  WorkerHandOff,
  WorkerHooks,
  WorkerState,
} from "./pool-worker.ts";
import { ProcessTree, type TreeExit } from "./process-tree.ts";
import { type ProbeResult, probeHttp, waitReady } from "./readiness.ts";
import { workerEnv } from "./worker-env.ts";
import { WorkerOutput } from "./worker-output.ts";
import type { PoolSandbox, SandboxLaunch, SandboxLifeline } from "./worker-sandbox.ts";

export interface WorkerDeps {
  caps: HostCapabilities;
  ports: PortReservations;
  cgroups?: CgroupTree;
  sandbox?: PoolSandbox;
  dieWith?: "daemon" | "lifeline";
  /** With dieWith "lifeline": the generation's reaper (the sandbox's claims name it). */
  lifeline?: SandboxLifeline;
}

const PORT_TEMPLATE = /\{\{\s*\.Port\s*\}\}/g;
const PORT_TAKEN = /EADDRINUSE|address already in use/i;
const START_ATTEMPTS = 3;
const STDERR_TAIL_LINES = 20;
/** How many of the last stderr lines a failure message quotes, and at most how many characters. */
const REASON_STDERR_LINES = 6;
const REASON_STDERR_CHARS = 1_200;
/** How long a worker that stopped listening right after its readiness answer gets to exit. */
const EXIT_AFTER_READY_WAIT_MS = 1_000;
const STRANGER_RECHECK_MS = 50;
/** ms since the epoch with performance.now()'s resolution: a boot's phases as spans show them. */
const epochNow = () => performance.timeOrigin + performance.now();

/**
 * Ports of this daemon's starting and live workers. The OS hands out a port again as soon as
 * the probe socket closes, and a starting worker has not bound it yet: without this set two
 * concurrent starts can be given one port, and the loser's readiness probe would find the
 * winner's listener — routing one session to another session's process.
 */
export class PortReservations {
  private readonly held = new Set<number>();

  async reserve(): Promise<number> {
    for (let attempt = 0; attempt < 100; attempt++) {
      const port = await ephemeralPort();
      if (!this.held.has(port)) {
        this.held.add(port);
        return port;
      }
    }
    throw new HerdError("unavailable", "no free local port found after 100 tries");
  }

  release(port: number): void {
    this.held.delete(port);
  }

  /** A port an adopted worker already listens on (restart). */
  hold(port: number): void {
    this.held.add(port);
  }
}

function describeReady(ready: PoolOptions["ready"]): string {
  if (ready.kind === "http") return `GET ${ready.path}`;
  if (ready.kind === "tcp") return "a TCP connect";
  return `a stdout line matching /${ready.pattern}/`;
}

/**
 * A start that timed out. Nothing of the tree on its port, while it listens elsewhere, is a
 * program that was never told the port (or ignored it); listening nowhere may still be a slow
 * start. On its port, it is slow to answer the readiness check.
 */
function describeTimeout(
  options: PoolOptions,
  port: number,
  listening: readonly string[] | undefined,
): string {
  const within = `not ready within ${options.startTimeoutMs} ms`;
  const waiting = `waiting for ${describeReady(options.ready)} on port ${port}`;
  if (listening === undefined || listening.some((a) => a.endsWith(`:${port}`))) {
    return `${within} (${waiting})`;
  }
  if (listening.length === 0) {
    return `${within}: nothing in its process tree listens on any port (${waiting})`;
  }
  return `${within}: nothing in its process tree listens on port ${port} (it listens on ${listening.join(", ")} — does cmd use {{.Port}} or $PORT?)`;
}

export function describeExit(exit: WorkerExit, when = ""): string {
  const how = `${
    exit.oom
      ? "killed by the kernel OOM killer (memory limit)"
      : exit.signal
        ? `killed by ${exit.signal}`
        : `exited with code ${exit.code}`
  }${when}`;
  // Several lines: tools often end with a pointer ("npm error A complete log of this run…")
  // below the line that carries the cause. Bounded, keeping the end.
  const lines = exit.stderrTail.filter((l) => l.trim()).slice(-REASON_STDERR_LINES);
  if (lines.length === 0) return how;
  let tail = lines.join(" | ");
  if (tail.length > REASON_STDERR_CHARS) tail = `…${tail.slice(-REASON_STDERR_CHARS)}`;
  return `${how}${STDERR_MARK}${tail}`;
}

export class Worker implements PoolWorker {
  state: WorkerState = { kind: "starting" };
  readonly stdout = new LineBuffer();
  readonly stderr = new LineBuffer();
  private readonly out: WorkerOutput;
  startedAt = new Date();
  readyAt = 0;
  boot: WorkerBoot | undefined;
  /** When start() began and the last attempt let the command run (epoch ms, fractional). */
  private starting = { at: 0, launchedAt: 0 };
  private tree: ProcessTree | undefined;
  private cgroup: WorkerCgroup | undefined;
  /** The tree's members when it became ready: the worker's own processes (clean-reuse.ts). */
  private own: ReadonlySet<number> = new Set();
  private launch: SandboxLaunch | undefined;
  private healthTimer: NodeJS.Timeout | undefined;
  private healthFailures = 0;
  private oomSeen = 0;
  private failed = false;
  port = 0;

  constructor(
    readonly id: string,
    private readonly options: PoolOptions,
    private readonly deps: WorkerDeps,
    private readonly hooks: WorkerHooks,
  ) {
    this.out = new WorkerOutput(options.logBufferBytes);
  }

  get output(): OutputRing {
    return this.out.ring;
  }

  resources(): { cpuSeconds?: number; memoryPeakBytes?: number } {
    const cpuSeconds = this.cgroup?.cpuSeconds();
    const memoryPeakBytes = this.cgroup?.memoryPeak();
    return {
      ...(cpuSeconds !== undefined ? { cpuSeconds } : {}),
      ...(memoryPeakBytes !== undefined ? { memoryPeakBytes } : {}),
    };
  }

  cpuSeconds(): number | undefined {
    return this.cgroup?.cpuSeconds();
  }

  resetMemoryPeak(): void {
    this.cgroup?.resetMemoryPeak();
  }

  get pid(): number {
    return this.tree?.pid ?? 0;
  }

  get endpoint(): WorkerEndpoint {
    return this.launch?.endpoint ?? { host: "127.0.0.1", port: this.port };
  }

  get address(): string {
    return formatWorkerAddress(this.endpoint);
  }

  /**
   * The slow, traffic-independent half of a start: reserve a port, make the cgroups, and spawn
   * the tree gated — its first process has joined every cgroup (a kernel migration that costs
   * ~15 ms) and waits on stdin before exec'ing the command. A pool keeps one prepared spare so
   * that a cold start pays only exec and the worker's own boot.
   */
  async prepare(): Promise<void> {
    if (this.tree) return;
    this.port = await this.deps.ports.reserve();
    const port = String(this.port);
    const fill = (s: string) => s.replace(PORT_TEMPLATE, port);
    const env = workerEnv({
      daemon: process.env,
      passthrough: this.options.envPassthrough,
      pool: Object.fromEntries(Object.entries(this.options.env).map(([k, v]) => [k, fill(v)])),
      port,
    });
    this.cgroup = this.deps.cgroups?.forWorker(this.options.name, this.id, this.options.limits);
    try {
      this.launch = this.deps.sandbox?.launch({
        id: this.id,
        port: this.port,
        ...(this.deps.dieWith === "lifeline" && this.deps.lifeline
          ? { lifeline: this.deps.lifeline }
          : {}),
      });
      Object.assign(env, this.launch?.env);
      this.tree = new ProcessTree({
        command: this.options.command.map(fill),
        env,
        ...(this.options.cwd ? { cwd: this.options.cwd } : {}),
        pidNamespace: this.options.isolation.pidNamespace,
        ...(this.cgroup ? { cgroup: this.cgroup } : {}),
        caps: this.deps.caps,
        gated: true,
        ...(this.launch ? { sandbox: this.launch } : {}),
        ...(this.deps.dieWith ? { dieWith: this.deps.dieWith } : {}),
      });
    } catch (err) {
      await this.discardPrepared();
      throw err;
    }
  }

  /** A prepared tree that has not died while it waited can still become this worker. */
  get preparedAlive(): boolean {
    return this.tree !== undefined && this.tree.exit === undefined;
  }

  /**
   * Ends a prepared tree that will never run (pool closing, or it went stale). Resolves once the
   * tree is gone and the sandbox's uid and directories are released (a uid goes back only then).
   */
  discardPrepared(): Promise<void> {
    const tree = this.tree;
    const launch = this.launch;
    tree?.killNow();
    this.tree = undefined;
    this.launch = undefined;
    this.cgroup?.remove();
    this.cgroup = undefined;
    if (this.port) this.deps.ports.release(this.port);
    this.port = 0;
    if (!launch) return Promise.resolve();
    return (tree ? tree.end(0) : Promise.resolve()).finally(() => launch.release());
  }

  /** Called once the tree is gone: its uid and directories can go back. */
  private releaseLaunch(): void {
    this.launch?.release();
    this.launch = undefined;
  }

  /**
   * Starts the tree (prepared earlier or now) and waits until it serves. Retries on a port lost
   * in the race between choosing it and the worker binding it. Rejects with
   * HerdError("unavailable") saying why.
   */
  async start(signal: AbortSignal): Promise<void> {
    this.starting.at = epochNow();
    for (let attempt = 1; ; attempt++) {
      const failure = await this.attempt(signal);
      if (!failure) break;
      const portTaken =
        failure.portTaken || this.stderr.tail(STDERR_TAIL_LINES).some((l) => PORT_TAKEN.test(l));
      if (!(portTaken && attempt < START_ATTEMPTS && !signal.aborted)) {
        this.state = { kind: "stopped" };
        throw new HerdError(
          "unavailable",
          `worker of pool ${this.options.name} failed to start: ${failure.reason}`,
        );
      }
    }
    this.state = { kind: "ready" };
    this.readyAt = Date.now();
    this.boot = {
      startedAt: this.starting.at,
      launchedAt: this.starting.launchedAt,
      readyAt: epochNow(),
    };
    this.own = new Set(this.tree!.members());
    this.tree!.exited.then((exit) => this.onExit(exit));
    this.startHealthChecks();
  }

  /** One run of the command; resolves to undefined when ready, else to why it failed. */
  private async attempt(
    signal: AbortSignal,
  ): Promise<{ reason: string; portTaken: boolean } | undefined> {
    if (!this.preparedAlive) {
      await this.discardPrepared();
      await this.prepare();
    }
    const tree = this.tree!;
    const deadline = AbortSignal.timeout(this.options.startTimeoutMs);
    const exitedEarly = new AbortController();
    const abort = AbortSignal.any([signal, deadline, exitedEarly.signal]);
    // Whose listener answered is checked from the first accepted connection on, alongside a
    // health probe still waiting for the worker's first answer.
    let owned: Promise<ListenerOwner | undefined> | undefined;
    // In a network namespace of its own nobody else can hold the port (and /proc/net/tcp would
    // show the daemon's namespace, not the worker's): the owner check is moot there.
    const privateNetwork = this.launch?.privateNetwork === true;
    const checkOwner = () => {
      if (this.options.ready.kind !== "stdout" && !privateNetwork) {
        owned ??= ownsListener(() => tree.members(), this.port);
      }
    };
    // The relay accepts before the worker listens; a bare connect through it proves nothing.
    const tcpProbe = privateNetwork
      ? async (): Promise<ProbeResult> =>
          (await listensInOwnNetwork(tree.members(), this.port))
            ? { ok: true }
            : { ok: false, reason: `nothing listens on port ${this.port}` }
      : undefined;
    const waiter = waitReady(this.options.ready, this.endpoint, abort, checkOwner, tcpProbe);
    const feed = (buffer: LineBuffer) => (chunk: Buffer) => {
      for (const line of buffer.push(chunk.toString("utf8"))) waiter.onLine(line);
    };
    // stdout lines matter only for readiness; after it the ring alone keeps them (a line
    // buffer would hold on to every long chunk its lines were cut from).
    const stdoutLines = feed(this.stdout);
    this.out.attach(tree.stdout, (chunk) => {
      if (this.readyAt === 0) stdoutLines(chunk);
    });
    this.out.attach(tree.stderr, feed(this.stderr));
    tree.exited.then(() => exitedEarly.abort());
    tree.open();
    this.starting.launchedAt = epochNow();
    try {
      await waiter.ready;
      checkOwner();
      let owner = await owned;
      if (owner === "stranger") {
        // A listener the worker is closing still shows in /proc/net/tcp after its fd is gone;
        // a stranger's is still there a moment later.
        await sleep(STRANGER_RECHECK_MS);
        owner = tree.exit ? "none" : await ownsListener(() => tree.members(), this.port);
      }
      if (owner === "stranger") {
        const reason = `port ${this.port} is served by another program`;
        await tree.end(0);
        await this.discardPrepared();
        return { reason, portTaken: true };
      }
      if (owner === "none") {
        // Nobody listens right after the worker answered: it is exiting, and its exit says why.
        const port = this.port;
        await Promise.race([
          tree.exited,
          sleep(EXIT_AFTER_READY_WAIT_MS, undefined, { ref: false }),
        ]);
        const exitedOnItsOwn = tree.exit !== undefined;
        await tree.end(0);
        await new Promise((r) => setImmediate(r));
        const reason = exitedOnItsOwn
          ? describeExit(this.exitInfo(tree.exit!), " right after it became ready")
          : `stopped listening on port ${port} right after it became ready`;
        await this.discardPrepared();
        return { reason, portTaken: false };
      }
      return undefined;
    } catch {
      const exitedOnItsOwn = exitedEarly.signal.aborted;
      // Before the tree goes: where it listens tells a wrong port from a slow start.
      const listening =
        exitedOnItsOwn || signal.aborted ? undefined : treeListeners(tree.members());
      await tree.end(0);
      // Let the last stderr bytes arrive: they usually say why.
      await new Promise((r) => setImmediate(r));
      const why =
        exitedOnItsOwn && tree.exit
          ? describeExit(this.exitInfo(tree.exit))
          : signal.aborted
            ? "the pool is shutting down"
            : describeTimeout(this.options, this.port, listening);
      await this.discardPrepared();
      return { reason: why, portTaken: false };
    }
  }

  exitInfo(exit: TreeExit): WorkerExit {
    const oom = (this.cgroup?.oomKills() ?? 0) > 0;
    return {
      code: exit.code,
      signal: exit.signal,
      oom,
      stderrTail: this.stderr.tail(STDERR_TAIL_LINES),
    };
  }

  private onExit(exit: TreeExit): void {
    if (this.state.kind === "stopping" || this.state.kind === "stopped") return;
    const info = this.exitInfo(exit);
    this.fail(describeExit(info), info);
  }

  private fail(reason: string, exit?: WorkerExit): void {
    if (this.failed) return;
    this.failed = true;
    this.stopHealthChecks();
    this.hooks.onFailure(this, reason, exit);
  }

  private startHealthChecks(): void {
    const path = this.options.healthPath;
    const interval = this.options.healthIntervalMs;
    if (interval <= 0) return;
    let inFlight = false;
    this.healthTimer = setInterval(async () => {
      if (inFlight || this.state.kind !== "ready") return;
      const ooms = this.cgroup?.oomKills() ?? 0;
      if (ooms > this.oomSeen) {
        this.oomSeen = ooms;
        const exit: WorkerExit = {
          code: null,
          signal: "SIGKILL",
          oom: true,
          stderrTail: this.stderr.tail(STDERR_TAIL_LINES),
        };
        this.fail(
          "a process of the worker was killed by the kernel OOM killer (memory limit)",
          exit,
        );
        return;
      }
      if (!path) return;
      inFlight = true;
      const result = await probeHttp(this.endpoint, path, Math.min(interval, 2_000));
      inFlight = false;
      if (result.ok) {
        this.healthFailures = 0;
        return;
      }
      if (++this.healthFailures >= this.options.healthFailures) {
        this.fail(`health check failed ${this.healthFailures} times: ${result.reason}`);
      }
    }, interval);
    this.healthTimer.unref();
  }

  private stopHealthChecks(): void {
    clearInterval(this.healthTimer);
    this.healthTimer = undefined;
  }

  /**
   * Gives the ready tree up to a successor daemon without touching it: no more checks, no more
   * reading its output, and its exit is no longer this worker's business. Returns what the
   * successor adopts it from (its output streams are sent beside).
   */
  handOff(): WorkerHandOff {
    const tree = this.tree!;
    this.state = { kind: "stopped" };
    this.stopHealthChecks();
    this.out.release();
    const { pid, startTime, stdout, stderr } = tree.handOff();
    const worker: HandedWorker = {
      id: this.id,
      port: this.port,
      address: this.address,
      pid,
      startTime,
      startedAt: this.startedAt.getTime(),
      readyAt: this.readyAt,
      own: [...this.own],
      cgroup: this.cgroup?.record(),
      ...(this.launch ? { sandbox: this.launch.handOff() } : {}),
    };
    this.launch = undefined;
    return { worker, stdout, stderr };
  }

  /** Owns a tree a predecessor daemon handed over (see handOff); it is ready at once. */
  static adopt(
    handed: HandedWorker,
    streams: { stdout: Readable | null; stderr: Readable | null },
    options: PoolOptions,
    deps: WorkerDeps,
    hooks: WorkerHooks,
  ): Worker {
    if (handed.sandbox && !deps.sandbox) {
      throw new HerdError(
        "failed_precondition",
        `worker ${handed.id} is contained, and its pool ${JSON.stringify(options.name)} now has no sandbox to own it (isolation: none in the new config)`,
      );
    }
    const worker = new Worker(handed.id, options, deps, hooks);
    if (handed.sandbox) worker.launch = deps.sandbox!.adopt(handed.sandbox);
    worker.port = handed.port;
    deps.ports.hold(handed.port);
    worker.startedAt = new Date(handed.startedAt);
    worker.readyAt = handed.readyAt;
    worker.own = new Set(handed.own);
    worker.cgroup = handed.cgroup ? WorkerCgroup.from(handed.cgroup) : undefined;
    const tree = new ProcessTree(
      {
        command: [],
        env: {},
        pidNamespace: options.isolation.pidNamespace,
        ...(worker.cgroup ? { cgroup: worker.cgroup } : {}),
        caps: deps.caps,
      },
      { pid: handed.pid, startTime: handed.startTime, ...streams },
    );
    worker.tree = tree;
    worker.out.attach(tree.stdout, () => {});
    const stderrLines = worker.stderr;
    worker.out.attach(tree.stderr, (chunk) => stderrLines.push(chunk.toString("utf8")));
    worker.state = { kind: "ready" };
    tree.exited.then((exit) => worker.onExit(exit));
    worker.startHealthChecks();
    return worker;
  }

  /** Kills what the last session left in the tree; resolves with the pids killed. */
  killStrays(): Promise<number[]> {
    const tree = this.tree;
    return tree ? killStrays(() => tree.members(), this.own) : Promise.resolve([]);
  }

  /** Ends the whole tree (SIGTERM, `graceMs`, SIGKILL) and resolves when no process is left. */
  async stop(graceMs: number): Promise<WorkerExit | undefined> {
    this.state = { kind: "stopping" };
    this.stopHealthChecks();
    const tree = this.tree;
    if (!tree) {
      this.state = { kind: "stopped" };
      return undefined;
    }
    await tree.end(graceMs);
    this.out.detach();
    const info = tree.exit ? this.exitInfo(tree.exit) : undefined;
    this.cgroup?.removeInBackground();
    this.releaseLaunch();
    this.deps.ports.release(this.port);
    this.state = { kind: "stopped" };
    return info;
  }

  cpuUsageUs(): number | undefined {
    const tree = this.tree;
    if (!tree) return undefined;
    const dir = this.cgroup?.v2Dir;
    return (dir !== undefined ? cgroupCpuUs(dir) : undefined) ?? processesCpuUs(tree.members());
  }

  /** Last resort, synchronous: used when the daemon itself is going down right now. */
  killNow(): void {
    this.tree?.killNow();
  }
}
