// herd's shared vocabulary: the pool definition, sessions, leases, events, stats and the
// SessionDirectory contract the pool engine (and the cluster's directory) offers the planes.
// Everything here is plain data: the server and the data plane translate it to their wire
// formats; the pool engine implements it and never imports either of them.
// All durations are milliseconds; 0 means "no limit" where a comment says so.

/** How the daemon decides a freshly spawned worker can take traffic. */
export type ReadyCheck =
  | { kind: "http"; path: string }
  | { kind: "tcp" }
  | { kind: "stdout"; pattern: string };

export interface ResourceLimits {
  memoryBytes?: number;
  /** Fractional CPUs, e.g. 0.5. */
  cpus?: number;
  pids?: number;
}

/**
 * Which uid a worker runs as: the daemon's, one of its own from `uidRange`, or a fixed one;
 * `default`: the strongest the host gives (`auto` under a root daemon, else `inherit`).
 */
export type WorkerUser = "default" | "inherit" | "auto" | { name: string } | { uid: number };

export interface IsolationOptions {
  /**
   * Run each worker as init of a fresh PID namespace, so its whole tree dies with it. Used
   * anyway where the host has no cgroup v2 `cgroup.kill`.
   */
  pidNamespace: boolean;
  user: WorkerUser;
  /** Inclusive [first, last] uids that `user: auto` hands out, one per live worker. */
  uidRange: readonly [number, number];
  /**
   * `private`: the worker gets its own network namespace; the daemon reaches it by a relay.
   * `egress`: the same, plus outbound connections to the outside world only (src/sandbox/egress).
   * `auto` (the default): egress where the host can give it, else private, else host.
   */
  network: "auto" | "egress" | "private" | "host";
  /** CIDR ranges `egress` may reach despite its deny list, and ranges it adds to it. */
  egress: { allow: readonly string[]; deny: readonly string[] };
  /**
   * `private`: its own /tmp and home, the daemon's config hidden (a mount namespace);
   * `default`: private where the host can make mount namespaces, else host.
   */
  filesystem: "default" | "host" | "private";
}

/** A fully resolved pool definition: `resolvePoolOptions` in options.ts fills the defaults. */
export interface PoolOptions {
  name: string;
  /** argv; `{{.Port}}` is replaced in every element. */
  command: readonly string[];
  /** Extra environment; `{{.Port}}` is replaced in values. `PORT` is always set. */
  env: Readonly<Record<string, string>>;
  /**
   * Names a worker takes from the daemon's environment where set. Besides these a worker gets
   * only PATH, HOME, LANG, LC_*, TZ, `env` and PORT (worker-env.ts).
   */
  envPassthrough: readonly string[];
  cwd?: string;
  min: number;
  max: number;
  /** Idle time after which a session ends as expired (0: never). */
  idleTtlMs: number;
  /** true: a released worker goes back to idle; false: its tree is killed. */
  reuse: boolean;
  ready: ReadyCheck;
  /** Periodic HTTP health check path; undefined: liveness of the process only. */
  healthPath?: string;
  healthIntervalMs: number;
  /** Consecutive failed checks before a worker counts as unhealthy. */
  healthFailures: number;
  startTimeoutMs: number;
  /** Hard cap on a session's age (0: none). */
  maxLifetimeMs: number;
  /** How long a HoldSession may go unrenewed (used by the control plane). */
  heartbeatGraceMs: number;
  /** Per-request deadline on the data plane for plain HTTP (0: none). */
  dataTimeoutMs: number;
  /** Kill the worker (session lost) when a data-plane request times out. */
  killOnDataTimeout: boolean;
  /**
   * End the session when its last data-plane connection closes. "auto": only sessions the data
   * plane created (auto_acquire) that have carried a WebSocket; see reconnect-window.ts.
   */
  releaseOnDisconnect: boolean | "auto";
  /**
   * After the client goes (last connection closed, or a HoldSession stream dropped), how long
   * the session waits for it to come back before it ends (0: it ends at once).
   */
  disconnectGraceMs: number;
  /**
   * At `max` with an acquire queued, a session with no open connection idle at least this long
   * yields its worker (ends as expired, `preempted`). 0: never.
   */
  preemptIdleMs: number;
  /** Default wait for a free worker when an acquire names none. */
  acquireTimeoutMs: number;
  /** Waiters allowed in the FIFO queue at `max` (beyond that: resource_exhausted). */
  queueLimit: number;
  limits: ResourceLimits;
  isolation: IsolationOptions;
  /** SIGTERM → this long → SIGKILL. */
  stopGraceMs: number;
  /** Idle workers above `min` are retired after this long unused (not under `warm: auto`). */
  idleWorkerTtlMs: number;
  /**
   * `auto`: keep as many idle workers as recent demand needs (arrival rate over
   * `warmWindowMs` × measured boot time, plus a burst allowance; warm-target.ts) and let them
   * go as it falls. `off`: only `min`.
   */
  warm: "off" | "auto";
  /** `warm: auto`'s stable window; its panic window is a tenth of it. */
  warmWindowMs: number;
  /** `warm: auto` keeps at most this many idle workers (default: max). */
  maxIdle: number;
  /**
   * A session whose worker uses more CPU than this (in CPUs, 0.05 = 5 % of one core) counts
   * as active without traffic: it does not idle out. 0: traffic alone decides.
   */
  idleCpu: number;
  /**
   * Crash-loop backoff: after the second consecutive worker crash (a death within
   * `restartStableMs` of becoming ready, or a failed start) the pool waits this long before
   * starting a worker on its own, doubling per further crash up to `restartBackoffMaxMs`.
   */
  restartBackoffMs: number;
  restartBackoffMaxMs: number;
  /** A worker up this long ends a crash streak. */
  restartStableMs: number;
  /** Bytes of a worker's stdout and stderr kept for TailSessionLogs (a ring per worker). */
  logBufferBytes: number;
}

/** A live session as every caller sees it (a snapshot; it does not update itself). */
export interface SessionInfo {
  id: string;
  pool: string;
  workerId: string;
  workerPid: number;
  /**
   * How the data plane reaches the worker: "host:port", or "unix:/path" for a worker in its own
   * network namespace (parse it with workerEndpoint in worker-endpoint.ts).
   */
  workerAddress: string;
  /** Secret the data plane may demand (X-Herd-Token); never forwarded to the worker. */
  token: string;
  createdAt: Date;
  lastActiveAt: Date;
  /** Max-lifetime deadline, if the pool has one. */
  expiresAt?: Date;
  /** Open leases (data-plane connections, holds). A session with any never idles out. */
  connections: number;
  /** Set while the session's client is gone: the end of its reconnect window. */
  reconnectDeadline?: Date;
  labels: Readonly<Record<string, string>>;
  /** The cluster node that owns the session (unset without a cluster). */
  node?: string;
  /**
   * Set when another node owns the session: the data plane forwards its traffic one hop to
   * `workerAddress` (the owner's data plane) with the session named in the path prefix and
   * a node-to-node credential: `credential()` mints one for a new upstream connection, which
   * sends it on each of its requests. `relay(client)` mints the credential of a relay hop
   * instead (src/dataplane/relay-hop.ts): a client connection (from address `client`) whose
   * bytes go to the owner unchanged. Never set for a local session.
   */
  peer?: { credential(): string; relay?(client: string): string };
  /** What the session used so far (listings) or in all (its end event); unset elsewhere. */
  usage?: SessionUsage;
  /** The tenant whose key created the session; unset for the operator's (DESIGN.md, "Tenants"). */
  tenant?: string;
  /** Only on what the acquire that bound the session returns: how that acquire went. */
  acquire?: AcquireTiming;
}

/**
 * What a session used: what a platform bills on. A figure the host cannot give is absent,
 * never zero. Bytes are the data plane's, counted on the node that owns the session.
 */
export interface SessionUsage {
  /** CPU time of the worker's tree during the session (its cgroup's cpu.stat). */
  cpuSeconds?: number;
  /** Peak memory of the worker's tree (cgroup memory.peak / v1 memory.max_usage_in_bytes). */
  memoryPeakBytes?: number;
  /** Bytes received from the session's clients (request heads, bodies, WebSocket frames). */
  rxBytes: number;
  /** Bytes sent to the session's clients. */
  txBytes: number;
}

/**
 * A session's data-plane byte counts: settled totals, plus the open client connections whose
 * bytes are not added yet (read them for a live figure). The data plane writes it through a
 * lease; the pool reads it.
 */
export interface SessionTraffic {
  rx: number;
  tx: number;
  readonly open: Set<() => { rx: number; tx: number }>;
}

export interface AcquireOptions {
  /** How long to queue at `max`; default: the pool's acquireTimeoutMs. */
  waitMs?: number;
  signal?: AbortSignal;
  labels?: Record<string, string>;
  /** Who creates the session if it is new (default control_plane); see releaseOnDisconnect. */
  origin?: SessionOrigin;
  /**
   * The tenant a new session belongs to (unset: the operator's). The pool treats it as an
   * opaque name: its queue is served round-robin across tenants by weight, and preempt_idle
   * takes only from a tenant above its fair share.
   */
  tenant?: string;
}

export type SessionOrigin = "data_plane" | "control_plane";

/** How a session ended. `released` is the client's doing; the others are the daemon's. */
export type SessionEnd =
  | { kind: "released"; reason?: string }
  | { kind: "expired"; reason: string }
  | { kind: "lost"; reason: string; exit?: WorkerExit };

export interface ReleaseOptions {
  /** Kill the worker's tree even when the pool reuses workers. */
  kill?: boolean;
  /** Defaults to { kind: "released" }. */
  end?: SessionEnd;
}

export interface WorkerExit {
  code: number | null;
  signal: string | null;
  oom: boolean;
  /** Last lines of the worker's stderr. */
  stderrTail: string[];
}

/** A counted claim on a session: while any is open, the session is busy and never idles out. */
export interface Lease {
  readonly sessionId: string;
  /** Aborts, with the SessionEnd as reason, when the session ends for any reason. */
  readonly ended: AbortSignal;
  /** Where the data plane counts the session's bytes; absent where another node counts them. */
  readonly traffic?: SessionTraffic;
  /**
   * Idempotent. Closing the last `http`/`websocket` lease may end the session, at once or after
   * its reconnect window (release_on_disconnect, disconnect_grace).
   */
  close(): void;
}

/** `http`: one client TCP connection; `websocket`: one tunnel; `hold`: one HoldSession stream. */
export type LeaseKind = "http" | "websocket" | "hold";

export type HerdEventType =
  | "session_acquired"
  | "session_released"
  | "session_expired"
  | "session_lost"
  | "worker_started"
  | "worker_stopped"
  | "worker_unhealthy"
  | "queue_changed"
  | "warm_target_changed"
  | "connection_opened"
  | "connection_closed";

export interface HerdEvent {
  /** Strictly increasing across the whole daemon, starting at 1. */
  revision: number;
  type: HerdEventType;
  time: Date;
  pool: string;
  sessionId?: string;
  workerId?: string;
  workerPid?: number;
  /** Snapshot of the session at the time of the event, where there is one. */
  session?: SessionInfo;
  /** Human-readable why: "idle", "max_lifetime", "exit code 1", "oom", ... */
  reason?: string;
  exit?: WorkerExit;
  /** For queue_changed: waiters now queued. */
  queued?: number;
  /** For warm_target_changed: the pool's new warm target (`reason` says what it is sized for). */
  warmTarget?: number;
  /** The cluster node the event happened on (unset without a cluster). */
  node?: string;
  /** session_acquired: how the pool found the worker and how long it took (histograms). */
  acquire?: AcquireTiming;
  /** worker_started: seconds from its start to ready. */
  startSeconds?: number;
}

/**
 * How an acquire got its worker: `warm` an idle one at once, `cold` one started for it,
 * `queued` one freed by another session while it waited at `max`. `seconds` from the acquire
 * to its session in the pool, `queuedSeconds` of it spent waiting in the pool's queue.
 */
export interface AcquireTiming {
  outcome: "warm" | "cold" | "queued";
  seconds: number;
  queuedSeconds: number;
  /** When the acquire arrived in the pool (ms since the epoch, fractional). */
  arrivedAt: number;
  /** The bound worker's start, when it began while this acquire waited. */
  boot?: WorkerBoot;
}

/** A worker's start (ms since the epoch, fractional): its command told to run, then ready. */
export interface WorkerBoot {
  /** The start began (a prepared spare's tree, else one prepared now). */
  startedAt: number;
  /** The command was let run: from here on the worker's own boot and readiness probes. */
  launchedAt: number;
  readyAt: number;
}

export interface EventFilter {
  pool?: string;
  sessionId?: string;
  /** Only events of this tenant's sessions (a tenant key's view). */
  tenant?: string;
  /** false: without connection_opened / connection_closed (WatchSessions unless asked). */
  connectionEvents?: boolean;
}

/**
 * One isolation key of a pool as the host resolved it: what its workers got and, when that is
 * less than the strongest, why (the host could not, or the config chose it, and what such a
 * worker can then reach). The launcher makes these; the pool only reports them.
 */
export interface ContainmentRow {
  /** The config key (`user`, `filesystem`, `network`, `kernel`, ...). */
  key: string;
  got: string;
  /** `full`: the strongest; `weakened`: by the config; `unavailable`: the host could not. */
  state: "full" | "weakened" | "unavailable";
  /** Empty when `full`; else the reason and what a worker can reach because of it. */
  note: string;
}

export interface PoolStats {
  name: string;
  workersTotal: number;
  workersIdle: number;
  workersBusy: number;
  workersStarting: number;
  sessions: number;
  queued: number;
  /** Of `queued`, each tenant's (tenants with one or more only; the operator's are not named). */
  queuedByTenant?: Readonly<Record<string, number>>;
  min: number;
  max: number;
  /** Consecutive worker crashes (0: not crash-looping). */
  crashStreak: number;
  /** Time left before the pool starts a worker on its own again (0: no backoff). */
  restartBackoffMs: number;
  /** Why the last worker of the streak crashed, while crashStreak > 0. */
  lastCrash?: string;
  /** What containment the pool's workers got, one row per isolation key. */
  containment: ContainmentRow[];
  /** `warm: auto`: idle workers the pool keeps for the current demand (0 otherwise). */
  warmTarget: number;
  /** `warm: auto`: new sessions per second the target is sized for. */
  arrivalRate: number;
  /** Measured boot time of the pool's workers, spawn to ready (0: none booted yet). */
  bootMs: number;
}

export interface NodeStats {
  memoryTotalBytes: number;
  memoryAvailableBytes: number;
  /** Fraction 0..1 of CPU time idle since the previous sample. */
  cpuIdle: number;
  load1: number;
}

/** One node of a cluster, as of its last lease renewal. */
export interface ClusterNodeStats {
  node: string;
  dataAddress: string;
  controlAddress: string;
  pools: PoolStats[];
  renewedAt: Date;
  leaseMs: number;
  /** The node is draining: placement skips it. */
  draining?: boolean;
}

export interface HerdStats {
  pools: PoolStats[];
  node: NodeStats;
  /** Cluster mode only: every live node's row, and each pool summed over the nodes. */
  cluster?: { nodes: ClusterNodeStats[]; pools: PoolStats[] };
}

export interface SubscribeOptions {
  filter?: EventFilter;
  /** Replay retained events with revision > sinceRevision first; too old → HerdError out_of_range. */
  sinceRevision?: number;
  /** Max undelivered events held for a slow consumer before it is cut off (default 1024). */
  bufferLimit?: number;
}

/**
 * A subscription is an async iterator of events. A consumer that falls more than
 * `bufferLimit` behind is cut off: the iterator throws HerdError("resource_exhausted").
 * The pool never waits for a subscriber.
 */
export interface EventSubscription extends AsyncIterable<HerdEvent> {
  close(): void;
}

/** The event source: the directory's one ordered stream of events, and where it stands. */
export interface EventSource {
  /** Highest revision issued so far (0 before any event). */
  revision(): number;
  subscribe(opts?: SubscribeOptions): EventSubscription;
}

/**
 * What the data plane needs of a directory: find (or create) a request's session, hold a lease
 * on it while a connection is open, report its connections as events, and end a session whose
 * worker timed out (kill_on_data_timeout).
 */
export interface SessionRoutes extends EventSource {
  poolNames(): string[];
  /** Throws HerdError not_found for an unknown pool. */
  poolOptions(pool: string): PoolOptions;
  /**
   * Pin `sessionId` (or a fresh unguessable id) to a worker of `pool`. The same id always gets
   * the same worker; concurrent acquires of one new id share one worker. Throws HerdError:
   * not_found (pool), invalid_argument (id), resource_exhausted (queue full),
   * deadline_exceeded (wait ran out), unavailable (worker failed to start / shutting down),
   * cancelled (signal), failed_precondition (id is live in another pool).
   */
  acquire(pool: string, sessionId: string | undefined, opts?: AcquireOptions): Promise<SessionInfo>;
  /** The live session with this id, if any. */
  lookup(sessionId: string): SessionInfo | undefined;
  /** Record activity (restarts the idle clock). Unknown ids are ignored. */
  touch(sessionId: string): void;
  /**
   * Mark the session busy until the lease closes; a lease taken in the session's reconnect
   * window cancels the window. Throws not_found for an unknown id.
   */
  lease(sessionId: string, kind: LeaseKind): Lease;
  /** Append an event from outside the pool (e.g. the data plane's connection events). */
  publish(event: Omit<HerdEvent, "revision" | "time">): void;
  /** End a session. Throws HerdError not_found for an unknown id. */
  release(sessionId: string, opts?: ReleaseOptions): Promise<SessionInfo>;
}

/**
 * The whole directory, as the control plane administers it: the data plane's SessionRoutes
 * plus a holder's going, listing sessions and the stats. `Herd` in src/pool/herd.ts is the
 * implementation, `ClusterDirectory` the cluster's; tests may pass any object of this shape.
 */
export interface SessionDirectory extends SessionRoutes {
  /**
   * The session's client went without releasing (e.g. its HoldSession stream dropped): end the
   * session after the pool's disconnect_grace unless a lease is taken on it first. Unknown ids
   * are ignored.
   */
  clientGone(sessionId: string): void;
  sessions(pool?: string): SessionInfo[];
  stats(pool?: string): HerdStats;
  /**
   * Optional (cluster): what WatchSessions streams when it differs from `subscribe` (every
   * node's events in the cluster's one order), with the revision a snapshot taken in the same
   * synchronous step reflects. A resume that cannot be served fails the iterator (out_of_range).
   */
  watch?(opts?: SubscribeOptions): { events: EventSubscription; revision: number };
}

/**
 * A capability of its own (the Herd has it, and a cluster's directory for its node): the
 * session's view of its worker's output, from the session's start on. Throws not_found for a
 * session that is not live here. Handed to the control plane by whoever wires it.
 */
export interface SessionLogSource {
  logs(sessionId: string): SessionLogs;
}

/** What one session may read of its worker's output (stdout and stderr, interleaved). */
export interface SessionLogs {
  /** The held output written since the session began (at most the pool's log buffer). */
  read(): Buffer;
  /** Calls `listener` with each chunk written from now on until `ended`; returns the stop. */
  follow(listener: (chunk: Buffer) => void): () => void;
  /** Aborts when the session ends: its view closes then. */
  readonly ended: AbortSignal;
}
