// Herd: every pool of one daemon, behind the SessionDirectory interface the planes use.
//
// Invariant: a session id is live in at most one pool (the registry is shared, and an acquire of
// an id live or in flight in another pool fails with failed_precondition). Events of all pools
// share one revision sequence.
//
// Lifetime: `Herd.start` probes the host once, says which guarantees are off, and resolves when
// every pool's `min` workers serve (or rejects, having cleaned up). `close` ends every session
// and kills every tree. A process 'exit' hook SIGKILLs anything still alive if the daemon exits
// without closing; the reaper sidecar (or PID namespaces) cover the daemon being SIGKILLed.
//
// Restart (src/cli/restart.ts): where the host has cgroup v2 `cgroup.kill` (so a reaper), the
// trees of every pool, contained or not, die with this daemon's *lifeline* rather than by pdeathsig
// (reaper.ts), so that `handOver` can give the live sessions and their trees to a successor
// process, which `start`s with them (`adopt`): the lifelines go with them, and the successor
// marks the cgroups it now holds. Ownership moves in one synchronous step on each side: this
// Herd forgets the sessions before they are sent, the successor adopts them after they arrived,
// so no instant has two owners; while they travel, both processes hold the lifelines, so none
// has none. A successor that dies before owning them is replaced by `reclaim` (the same
// adoption, here). After a hand-over this Herd still answers for the handed sessions to the
// data-plane connections it already had (`handed`: they keep flowing to the same workers, and
// their activity is reported through `onHandedActivity`), until it closes, which then kills
// only what it kept and leaves the lifelines and cgroups to the successor.

import type {
  AcquireOptions,
  ContainmentRow,
  EventSubscription,
  HerdEvent,
  HerdStats,
  Lease,
  LeaseKind,
  PoolOptions,
  ReleaseOptions,
  SessionDirectory,
  SessionInfo,
  SessionLogs,
  SubscribeOptions,
} from "../core/index.ts";
import {
  HerdError,
  type Logger,
  type NodeDrain,
  newSessionId,
  silentLogger,
  validateSessionId,
} from "../core/index.ts";
import { CgroupTree } from "./cgroups.ts";
import { EventLog } from "./event-log.ts";
import type { TenantWeight } from "./fair-share.ts";
import type { HerdHandOff } from "./hand-over.ts";
import { hostCapabilities } from "./host-capabilities.ts";
import { nodeStats } from "./node-stats.ts";
import { Pool } from "./pool.ts";
import { type Lifeline, Reaper } from "./reaper.ts";
import { InMemorySessionRegistry, type SessionRegistry } from "./session-registry.ts";
import { PortReservations, Worker } from "./worker.ts";
import type { PoolSandbox, SandboxFactory } from "./worker-sandbox.ts";

export interface HerdOptions {
  logger?: Logger;
  registry?: SessionRegistry;
  /** Events retained for WatchSessions resumption (default 10 000). */
  eventHistory?: number;
  /** Events a watcher may fall behind before it is cut off (default 1 024). */
  watchBuffer?: number;
  /**
   * Contains workers whose pool asks for `isolation` beyond the process tree (user, network,
   * filesystem): src/sandbox's launcher. Without it such a pool fails to start.
   */
  sandbox?: SandboxFactory;
  /** While it drains, the herd refuses new sessions (live ones are served as before). */
  drain?: NodeDrain;
  /**
   * What each tenant (AcquireOptions.tenant) weighs in a full pool's queue and in preempt_idle's
   * fair share (fair-share.ts). Default: every tenant 1; the operator's acquires always weigh 1.
   */
  tenantWeight?: TenantWeight;
  /** What a predecessor daemon handed over (restart): owned from the start. */
  adopt?: HerdHandOff;
  /** Called once `adopt` is owned, before the pools start their own workers. */
  adopted?: (herd: Herd) => void;
}

/** Herds started by this process so far (worker ids must never repeat within it). */
let herdsInProcess = 0;

/** Does the pool explicitly ask for more than its own process tree (and PID namespace)? */
function asksSandbox({ isolation }: PoolOptions): boolean {
  return (
    !["inherit", "default"].includes(isolation.user as string) ||
    !["host", "auto"].includes(isolation.network) ||
    isolation.filesystem === "private"
  );
}

interface Contained {
  sandbox?: PoolSandbox;
  containment: ContainmentRow[];
}

/** Without a launcher (library use), `default` keys get the process tree only, and say so. */
const NO_LAUNCHER: ContainmentRow[] = [
  {
    key: "isolation",
    got: "process tree only",
    state: "unavailable",
    note: "this Herd was started without a sandbox launcher (HerdOptions.sandbox); so a worker runs as the daemon's uid on the host's network and filesystem",
  },
];

/** Each pool's containment; if a sandbox cannot be made, the ones made are closed and it throws. */
function makeSandboxes(
  pools: readonly PoolOptions[],
  factory: SandboxFactory | undefined,
): Map<string, Contained> {
  const made = new Map<string, Contained>();
  try {
    for (const options of pools) {
      if (factory) {
        made.set(options.name, factory(options));
        continue;
      }
      if (asksSandbox(options)) {
        throw new HerdError(
          "failed_precondition",
          `pool ${JSON.stringify(options.name)}: isolation (user/network/filesystem) needs a sandbox launcher, and this Herd was started without one (HerdOptions.sandbox)`,
        );
      }
      made.set(options.name, { containment: NO_LAUNCHER });
    }
  } catch (err) {
    for (const { sandbox } of made.values()) sandbox?.close();
    throw err;
  }
  return made;
}

export class Herd implements SessionDirectory {
  private readonly pools = new Map<string, Pool>();
  private readonly events: EventLog;
  private readonly registry: SessionRegistry;
  private readonly drain: NodeDrain | undefined;
  private deathCause: (() => string | undefined) | undefined;
  private readonly cgroups: CgroupTree | undefined;
  private readonly reaper: Reaper | undefined;
  /** Predecessors' lifelines this daemon holds for the workers it adopted (restart). */
  private readonly inherited: Lifeline[] = [];
  /** After a hand-over: the sessions given away, still routable for open connections. */
  private handed: Map<string, SessionInfo> | undefined;
  /** Activity on a handed session's connections still open here (the successor is told). */
  onHandedActivity: ((sessionId: string) => void) | undefined;
  private readonly supplyDeps: {
    caps: ReturnType<typeof hostCapabilities>;
    ports: PortReservations;
  };
  private readonly exitHook = () => {
    for (const pool of this.pools.values()) pool.killNow();
  };
  private workerSeq = 0;
  private closing: Promise<void> | undefined;

  /** Host guarantees that are off here (empty when all are on). */
  readonly guaranteesOff: readonly string[];

  private constructor(pools: readonly PoolOptions[], opts: HerdOptions) {
    const logger = opts.logger ?? silentLogger;
    const caps = hostCapabilities();
    this.guaranteesOff = caps.missing;
    if (caps.missing.length > 0) {
      logger.warn(
        { guaranteesOff: caps.missing },
        `guarantees off on this host: ${caps.missing.join("; ")}`,
      );
    }
    const { cgroups } = caps;
    // The generation's cgroup is named after its reaper, which therefore starts first.
    const reaper = cgroups.v2
      ? new Reaper(() =>
          logger.error(
            {},
            "the reaper (dead-man's switch) of this daemon's workers exited: were this daemon killed now, its workers would outlive it",
          ),
        )
      : undefined;
    this.cgroups =
      cgroups.v2 || cgroups.v1.size > 0
        ? new CgroupTree(cgroups, logger, reaper?.identity)
        : undefined;
    const killAll = this.cgroups?.killAllFile;
    if (reaper && killAll) reaper.arm(killAll);
    else reaper?.stop();
    this.reaper = killAll ? reaper : undefined;
    this.events = new EventLog(opts.eventHistory, opts.watchBuffer);
    this.registry = opts.registry ?? new InMemorySessionRegistry();
    this.drain = opts.drain;
    // Unique per Herd, not just per process: a closed Herd's workers' cgroups are removed in
    // the background for a while, and a later Herd of the same process (tests) reusing their
    // ids had its fresh cgroups removed under it ("herd-join: Directory nonexistent").
    const runId = `${process.pid.toString(36)}${(++herdsInProcess).toString(36)}`;
    const ports = new PortReservations();
    this.supplyDeps = { caps, ports };
    const names = new Set<string>();
    for (const { name } of pools) {
      if (names.has(name)) {
        throw new HerdError("invalid_argument", `pool ${JSON.stringify(name)} is defined twice`);
      }
      names.add(name);
    }
    const sandboxes = makeSandboxes(pools, opts.sandbox);
    for (const options of pools) {
      const { sandbox, containment } = sandboxes.get(options.name)!;
      logContainment(logger, options.name, containment);
      this.pools.set(
        options.name,
        new Pool(options, {
          caps,
          ports,
          cgroups: this.cgroups,
          ...(sandbox ? { sandbox } : {}),
          containment,
          events: this.events,
          registry: this.registry,
          logger,
          nextWorkerId: (pool) => `${pool}-${runId}-${++this.workerSeq}`,
          // Trees the lifeline covers can be handed to a successor (a sandbox's included: its
          // claims then name the reaper, which outlives this process as long as they live).
          dieWith: this.reaper ? "lifeline" : "daemon",
          ...(this.reaper
            ? { lifeline: { pid: this.reaper.identity.pid, startTime: this.reaper.identity.start } }
            : {}),
          deathCause: () => this.deathCause?.(),
          ...(opts.tenantWeight ? { tenantWeight: opts.tenantWeight } : {}),
        }),
      );
    }
    process.on("exit", this.exitHook);
  }

  static async start(pools: readonly PoolOptions[], opts: HerdOptions = {}): Promise<Herd> {
    if (pools.length === 0) throw new HerdError("invalid_argument", "no pools configured");
    const herd = new Herd(pools, opts);
    try {
      if (opts.adopt) herd.adopt(opts.adopt);
      opts.adopted?.(herd);
      await Promise.all([...herd.pools.values()].map((p) => p.start()));
    } catch (err) {
      await herd.close();
      throw err;
    }
    return herd;
  }

  /**
   * Who kills workers from outside (the cluster's fencing watchdog, when the daemon was too
   * frozen to fence itself): while `cause` names a reason, a worker's death is that, not a crash.
   */
  explainDeaths(cause: () => string | undefined): void {
    this.deathCause = cause;
  }

  poolNames(): string[] {
    return [...this.pools.keys()];
  }

  poolOptions(pool: string): PoolOptions {
    return this.pool(pool).options;
  }

  private pool(name: string): Pool {
    const pool = this.pools.get(name);
    if (!pool) {
      throw new HerdError(
        "not_found",
        `unknown pool ${JSON.stringify(name)}; pools: ${this.poolNames().join(", ")}`,
      );
    }
    return pool;
  }

  async acquire(
    pool: string,
    sessionId: string | undefined,
    opts: AcquireOptions = {},
  ): Promise<SessionInfo> {
    const target = this.pool(pool);
    if (this.closing) throw new HerdError("unavailable", "herd is shutting down");
    if (this.handed && !this.handed.has(sessionId ?? "")) {
      throw new HerdError("unavailable", "herd is restarting: retry in a moment");
    }
    const handed = sessionId === undefined ? undefined : this.handed?.get(sessionId);
    if (handed) return handed;
    const id =
      sessionId === undefined || sessionId === "" ? newSessionId() : validateSessionId(sessionId);
    const live = this.registry.get(id);
    const elsewhere =
      live?.pool ?? [...this.pools.values()].find((p) => p !== target && p.hasFlight(id))?.name;
    if (elsewhere !== undefined && elsewhere !== pool) {
      throw new HerdError(
        "failed_precondition",
        `session ${JSON.stringify(id)} is live in pool ${JSON.stringify(elsewhere)}, not ${JSON.stringify(pool)}`,
      );
    }
    if (this.drain?.draining && live === undefined && !target.hasFlight(id)) {
      throw new HerdError(
        "unavailable",
        "herd is draining (herd drain or SIGTERM): it takes no new sessions; use another node",
      );
    }
    return target.acquire(id, opts);
  }

  lookup(sessionId: string): SessionInfo | undefined {
    const pool = this.registry.get(sessionId)?.pool;
    if (pool === undefined) return this.handed?.get(sessionId);
    return this.pools.get(pool)?.lookup(sessionId);
  }

  async release(sessionId: string, opts: ReleaseOptions = {}): Promise<SessionInfo> {
    return this.owner(sessionId).release(sessionId, opts);
  }

  private owner(sessionId: string): Pool {
    const pool = this.registry.get(sessionId)?.pool;
    const owner = pool === undefined ? undefined : this.pools.get(pool);
    if (!owner) throw new HerdError("not_found", `no live session ${JSON.stringify(sessionId)}`);
    return owner;
  }

  logs(sessionId: string): SessionLogs {
    return this.owner(sessionId).logs(sessionId);
  }

  touch(sessionId: string): void {
    const pool = this.registry.get(sessionId)?.pool;
    if (pool !== undefined) this.pools.get(pool)?.touch(sessionId);
    else if (this.handed?.has(sessionId)) this.onHandedActivity?.(sessionId);
  }

  lease(sessionId: string, kind: LeaseKind): Lease {
    if (this.handed?.has(sessionId) && this.registry.get(sessionId) === undefined) {
      // A connection that was open at the hand-over: it flows on, the successor owns the end.
      this.onHandedActivity?.(sessionId);
      return {
        sessionId,
        ended: new AbortController().signal,
        close: () => this.onHandedActivity?.(sessionId),
      };
    }
    return this.owner(sessionId).lease(sessionId, kind);
  }

  clientGone(sessionId: string): void {
    const pool = this.registry.get(sessionId)?.pool;
    if (pool !== undefined) this.pools.get(pool)?.clientGone(sessionId);
  }

  sessions(pool?: string): SessionInfo[] {
    const pools = pool === undefined ? [...this.pools.values()] : [this.pool(pool)];
    return pools.flatMap((p) => p.list());
  }

  stats(pool?: string): HerdStats {
    const pools = pool === undefined ? [...this.pools.values()] : [this.pool(pool)];
    return { pools: pools.map((p) => p.stats()), node: nodeStats() };
  }

  revision(): number {
    return this.events.revision();
  }

  subscribe(opts?: SubscribeOptions): EventSubscription {
    return this.events.subscribe(opts);
  }

  publish(event: Omit<HerdEvent, "revision" | "time">): void {
    this.events.append(event);
  }

  /** Ends every session, kills every worker tree, ends every event subscription. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.allSettled([...this.pools.values()].map((p) => p.close()));
      this.events.closeAll();
      process.off("exit", this.exitHook);
      // Handed over: the lifelines and cgroups keep the successor's workers; it ends them.
      if (this.handed) return;
      this.reaper?.stop();
      for (const lifeline of this.inherited) lifeline.drop();
      await this.cgroups?.destroy();
      for (const { killFile } of this.inherited) await this.cgroups?.removeHeld(killFile);
    })();
    return this.closing;
  }

  // ---- restart (src/cli/restart.ts) ----------------------------------------------------------

  /** Why this daemon cannot hand its sessions to a successor without risking one; else undefined. */
  restartRefusal(): string | undefined {
    if (this.closing) return "herd is shutting down";
    if (this.handed) return "herd has already handed its sessions to a successor";
    if (!this.reaper) {
      return "this host offers no cgroup v2 cgroup.kill, which is what keeps worker trees owned while two daemons hand them over (without it they die with this process: see docs/operations.md, Upgrading herd)";
    }
    return undefined;
  }

  /**
   * Gives every live session on a ready worker, with its tree and every lifeline, to a
   * successor daemon (see the header). Synchronous: from its return on, this Herd owns none of
   * them, refuses new sessions, and its event log is sealed (the successor continues the revisions
   * from the returned state, so no later event of this one may reach a watcher).
   */
  handOver(): HerdHandOff {
    const refusal = this.restartRefusal();
    if (refusal) throw new HerdError("failed_precondition", `cannot restart: ${refusal}`);
    const sessions = [...this.pools.values()].flatMap((p) => p.handOver());
    this.handed = new Map(
      sessions.map((s) => [s.session.id, this.handedInfo(s.pool, s.session.id, s)]),
    );
    const handOff: HerdHandOff = {
      revision: this.events.revision(),
      events: this.events.retained(),
      lifelines: [this.reaper!.lifeline!, ...this.inherited],
      sessions,
    };
    // The successor continues the revisions from here: nothing after may reach a watcher.
    this.events.seal();
    return handOff;
  }

  /** The successor is gone before it owned what `handOver` gave it: own it again. */
  reclaim(handOff: HerdHandOff): void {
    this.handed = undefined;
    this.events.unseal();
    this.adoptSessions(handOff, false);
  }

  private adopt(handOff: HerdHandOff): void {
    this.inherited.push(...handOff.lifelines);
    this.events.continueFrom(handOff.events, handOff.revision);
    this.adoptSessions(handOff, true);
  }

  private adoptSessions(handOff: HerdHandOff, withOutput: boolean): void {
    for (const handed of handOff.sessions) {
      const pool = this.pools.get(handed.pool);
      if (!pool) {
        throw new HerdError(
          "failed_precondition",
          `session ${handed.session.id} is in pool ${JSON.stringify(handed.pool)}, which the config no longer has`,
        );
      }
      const streams = withOutput
        ? { stdout: handed.stdout, stderr: handed.stderr }
        : { stdout: null, stderr: null };
      pool.adopt(handed, (hooks) =>
        Worker.adopt(
          handed.worker,
          streams,
          pool.options,
          {
            ...this.supplyDeps,
            ...(this.cgroups ? { cgroups: this.cgroups } : {}),
            ...(pool.sandbox ? { sandbox: pool.sandbox } : {}),
            dieWith: "lifeline",
          },
          hooks,
        ),
      );
    }
  }

  private handedInfo(pool: string, id: string, h: HerdHandOff["sessions"][number]): SessionInfo {
    const { session, worker } = h;
    return {
      id,
      pool,
      workerId: worker.id,
      workerPid: worker.pid,
      workerAddress: worker.address,
      token: session.token,
      createdAt: new Date(session.createdAt),
      lastActiveAt: new Date(session.lastActiveAt),
      ...(session.expiresAt !== undefined ? { expiresAt: new Date(session.expiresAt) } : {}),
      connections: 0,
      labels: session.labels,
    };
  }
}

/** What a pool's workers got, in one line, and each key that is less than the strongest, loudly. */
function logContainment(logger: Logger, pool: string, rows: readonly ContainmentRow[]): void {
  const got = rows.map((r) => `${r.key}: ${r.got}`).join("; ");
  logger.info({ pool, containment: rows }, `pool ${pool} containment: ${got}`);
  for (const r of rows) {
    if (r.state === "full") continue;
    const why = r.state === "weakened" ? "weakened by the config" : "not available on this host";
    logger.warn(
      { pool, key: r.key, got: r.got, state: r.state },
      `pool ${pool}: ${r.key}: ${r.got} (${why}): ${r.note}`,
    );
  }
}
