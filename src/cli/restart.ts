// `herd restart` (RestartNode) and SIGUSR2: this daemon hands itself over, in place, to a new
// process running the code and the config now on disk, which takes over the listening sockets
// and every live session with its worker, without killing one.
//
// Who owns a worker tree (src/pool/herd.ts, reaper.ts): its generation's lifeline, the write end
// of a reaper's pipe, kills the tree when no process holds it any more; the daemon that has the
// session in its pools manages it. The protocol keeps both true at every instant, whichever of
// the two processes is SIGKILLed when:
//
//   old                                              new (a child, with an IPC channel)
//   spawned ───────────────────────────────────────▶ loads the config; refused → exits 2
//                                                    validated: "validated"
//   handed: Herd.handOver() (the sessions leave its
//     pools); a cluster node's pump flushes, its
//     lease pauses; then the handles (lifelines,
//     worker output, listeners and the control
//     socket's, fence watchdog)
//     and the state are sent ──────────────────────▶ received: Herd.start(adopt): owned here
//                                                    a cluster node renews the same lease at once
//                                                    adopted: "adopted"; pools start
//   committed ◀──────────────────────────────────────
//                                                    serving: planes listen on the handles
//   stops accepting, closes its control plane,  ◀─── "serving"
//   serves its open connections to their end
//   (drain_timeout at most), exits 0
//
//   - Until "serving", a new process that exits (or says nothing for RESTART_STEP_MS, and is
//     then SIGKILLed) leaves everything to the old one: it reclaims what it handed over
//     (Herd.reclaim, adopting by pid like a successor), only once the child has exited, so
//     never while the child might still own it. Its listeners were never closed.
//   - The old process SIGKILLed after "handed": the new one holds every lifeline (received
//     with the state) and owns what it adopted; if the state never arrived whole, it exits,
//     owning nothing, and the lifelines, with no holder left, kill the trees.
//   - Both SIGKILLed: no holder is left, so every generation's reaper kills its trees.
//   - A cluster node's lease is renewed by one process at a time: the old one pauses it before
//     it sends the state and resumes it (with the claims) only when it reclaims, once the child
//     has exited; the new one renews from the state received. Both dead, or a hand-over longer
//     than the lease: nobody renews, the node is lost as any node (node_lost), and its fence
//     watchdog (whose input both held) kills what the reapers had not.
// A session is in exactly one process's pools at any instant: the old forgets before it sends,
// the new adopts after it received.
//
// Keep-alive connections and WebSocket tunnels open at the hand-over stay with the old process
// until they close (their requests keep reaching the same workers; their activity is reported
// to the new one, so no session idles out under them); the new one serves every new connection.
// HoldSession and WatchSessions streams end (UNAVAILABLE) and the SDKs re-attach to the new
// one; the revisions go on, and instance_id is kept, so a watcher resumes without a gap.
//
// Test hook: with HERD_RESTART_HOLD=<dir>, each step writes <dir>/<role>-<step> (the process's
// pid and the worker pids it owns) and waits for <dir>/<role>-<step>.go.

import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, renameSync, writeFileSync } from "node:fs";
import type { Socket } from "node:net";
import { join } from "node:path";
import type { Readable, Writable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import type { ClusterAdoption, ClusterHandOff } from "../cluster/index.ts";
import { HerdError, type Logger } from "../core/index.ts";
import { type Herd, type HerdHandOff, Lifeline } from "../pool/index.ts";
import { notifySystemd, reloading } from "./systemd-notify.ts";

/** Set (JSON: the old process's listen addresses) in the new process's environment. */
export const TAKE_OVER_ENV = "HERD_TAKE_OVER";
const HOLD_ENV = "HERD_RESTART_HOLD";
/** How long the new process gets for each of its steps (a start under load included). */
const RESTART_STEP_MS = 60_000;
const TOUCH_EVERY_MS = 1_000;

export interface TakeOverAddresses {
  data: string;
  control: string;
  /** The cluster node the old process is (the new one goes on as the same node). */
  node?: string;
  /** control.socket, as configured (the new one serves the same path). */
  socket?: string;
}

type Role = "old" | "new";
type Step = "spawned" | "handed" | "committed" | "validated" | "received" | "adopted" | "serving";

/** The test hook (see the header); nothing without HERD_RESTART_HOLD. */
async function step(role: Role, name: Step, herd?: Herd): Promise<void> {
  const dir = process.env[HOLD_ENV];
  if (!dir) return;
  const file = join(dir, `${role}-${name}`);
  const owns = herd ? herd.sessions().map((s) => s.workerPid) : [];
  // Whole or not at all: the test reads it as soon as the name appears.
  writeFileSync(`${file}.part`, JSON.stringify({ pid: process.pid, owns }));
  renameSync(`${file}.part`, file);
  while (!existsSync(`${file}.go`)) await sleep(10);
}

/** A session's handles travel apart from the state: where each goes. */
type HandleRole =
  | { role: "lifeline"; index: number }
  | { role: "stdout" | "stderr"; index: number }
  | { role: "listener"; name: "data" | "control" | "socket" }
  | { role: "watchdog" };

type StateMessage = {
  kind: "state";
  revision: number;
  events: HerdHandOff["events"];
  lifelines: string[];
  sessions: Omit<HerdHandOff["sessions"][number], "stdout" | "stderr">[];
  instanceId: string;
  /** Where the handed control socket listens now (in the old process's runtime directory). */
  socketPath?: string;
  cluster?: ClusterHandOff;
};

type OldMessage =
  | StateMessage
  | ({ kind: "handle" } & HandleRole)
  | { kind: "touch"; sessionIds: string[] };

type NewMessage =
  | { kind: "validated" }
  | { kind: "refused"; reason: string }
  | { kind: "adopted"; sessions: number }
  | { kind: "serving" };

export interface RestartDeps {
  herd: Herd;
  logger: Logger;
  /** The argv that runs `herd serve` now (the code on disk), and the listen addresses. */
  /** `env`: what the new process needs beyond this one's environment (the secrets this one
   * scrubbed from its own once read: control token, cluster secret, Redis URL). */
  command: { file: string; args: string[]; env: Record<string, string> };
  addresses: TakeOverAddresses;
  listeners(): Listeners;
  /** The new process died before serving: what it may have taken over is this one's again. */
  reclaimed?(): void;
  instanceId(): string;
  /** The new process serves: stop accepting, and leave once the open connections close. */
  leave(successor: number): void;
  /** A cluster node's part (src/cluster, start-cluster.ts): handed over with the sessions. */
  cluster?: {
    handOver(sessionIds: string[]): Promise<ClusterHandOff>;
    watchdog: object;
    reclaim(state: ClusterHandOff): void;
  };
}

export interface RestartResult {
  pid: number;
  previousPid: number;
  sessions: number;
}

/** The old side: one restart at a time. */
export class Restarter {
  private running: Promise<RestartResult> | undefined;
  private done = false;

  constructor(private readonly deps: RestartDeps) {}

  restart(): Promise<RestartResult> {
    if (this.done) {
      return Promise.reject(
        new HerdError("failed_precondition", "this daemon has already handed over"),
      );
    }
    this.running ??= this.run().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async run(): Promise<RestartResult> {
    const { herd, logger } = this.deps;
    const refusal = herd.restartRefusal();
    if (refusal) throw new HerdError("failed_precondition", `cannot restart: ${refusal}`);
    logger.info({}, "restart: starting the new process");
    await notifySystemd(logger, reloading());
    const child = spawn(this.deps.command.file, this.deps.command.args, {
      detached: true,
      stdio: ["ignore", "inherit", "inherit", "ipc"],
      serialization: "advanced",
      env: {
        ...process.env,
        ...this.deps.command.env,
        [TAKE_OVER_ENV]: JSON.stringify(this.deps.addresses),
      },
    });
    const channel = new Channel(child);
    await step("old", "spawned", herd);
    const verdict = await channel.next(["validated", "refused"]);
    if (verdict?.kind !== "validated") {
      await channel.gone();
      const why =
        verdict?.kind === "refused" ? verdict.reason : "the new process exited before it said";
      logger.warn({ reason: why }, "restart refused: this daemon keeps serving");
      await notifySystemd(logger, ["READY=1"]);
      throw new HerdError("failed_precondition", `restart refused: ${why}`);
    }
    const handOff = herd.handOver();
    const sessions = handOff.sessions.length;
    const cluster = await this.deps.cluster?.handOver(handOff.sessions.map((s) => s.session.id));
    // Sent means written to the channel, handles (each acknowledged in turn) and state alike.
    await this.send(child, handOff, cluster).catch(() => {});
    await step("old", "handed", herd);
    const adopted = await channel.next(["adopted"]);
    if (adopted === undefined) {
      return this.reclaim(channel, handOff, cluster, "before it owned them");
    }
    await step("old", "committed", herd);
    const serving = await channel.next(["serving"]);
    if (serving === undefined) return this.reclaim(channel, handOff, cluster, "before it served");
    this.done = true;
    const pid = child.pid ?? 0;
    logger.info(
      { pid, sessions },
      `restart: handed ${sessions} session(s) to pid ${pid}; leaving once open connections close`,
    );
    herd.onHandedActivity = touchesTo(child);
    channel.release();
    this.deps.leave(pid);
    return { pid, previousPid: process.pid, sessions };
  }

  /** The new process is gone before serving: what it was given is this daemon's again. */
  private async reclaim(
    channel: Channel,
    handOff: HerdHandOff,
    cluster: ClusterHandOff | undefined,
    when: string,
  ): Promise<never> {
    await channel.gone();
    this.deps.herd.reclaim(handOff);
    this.deps.reclaimed?.();
    if (cluster) this.deps.cluster?.reclaim(cluster);
    const why = `the new process exited ${when}; this daemon kept its ${handOff.sessions.length} session(s)`;
    this.deps.logger.warn({}, `restart failed: ${why}`);
    await notifySystemd(this.deps.logger, ["READY=1"]);
    throw new HerdError("unavailable", `restart failed: ${why}`);
  }

  /**
   * The handles first (each waits for the one before it), then the state that names them;
   * resolves once the state is written (rejects if the channel closed first).
   */
  private send(
    child: ChildProcess,
    handOff: HerdHandOff,
    cluster: ClusterHandOff | undefined,
  ): Promise<void> {
    const handle = (role: HandleRole, h: object, keepOpen: boolean) => {
      child.send({ kind: "handle", ...role } satisfies OldMessage, h as Socket, { keepOpen });
    };
    handOff.lifelines.forEach((l, index) => {
      handle({ role: "lifeline", index }, l.socket, true);
    });
    handOff.sessions.forEach((s, index) => {
      if (s.stdout) handle({ role: "stdout", index }, s.stdout, false);
      if (s.stderr) handle({ role: "stderr", index }, s.stderr, false);
    });
    const { data, control, socket } = this.deps.listeners();
    handle({ role: "listener", name: "data" }, data, true);
    handle({ role: "listener", name: "control" }, control, true);
    if (socket) handle({ role: "listener", name: "socket" }, socket.handle, true);
    if (this.deps.cluster) handle({ role: "watchdog" }, this.deps.cluster.watchdog, true);
    const state: StateMessage = {
      kind: "state",
      revision: handOff.revision,
      events: handOff.events,
      lifelines: handOff.lifelines.map((l) => l.killFile),
      sessions: handOff.sessions.map(({ stdout: _o, stderr: _e, ...rest }) => rest),
      instanceId: this.deps.instanceId(),
      ...(socket && { socketPath: socket.path }),
      ...(cluster && { cluster }),
    };
    return new Promise((resolve, reject) => {
      child.send(state, (err) => (err ? reject(err) : resolve()));
    });
  }
}

/** Activity on connections the old process still serves, batched to the new one. */
function touchesTo(child: ChildProcess): (sessionId: string) => void {
  const pending = new Set<string>();
  const flush = () => {
    const sessionIds = [...pending];
    pending.clear();
    if (child.connected) {
      child.send({ kind: "touch", sessionIds } satisfies OldMessage, undefined, {}, () => {});
    }
  };
  return (sessionId) => {
    if (pending.size === 0) setTimeout(flush, TOUCH_EVERY_MS).unref();
    pending.add(sessionId);
  };
}

/** The new process as the old one hears it: its messages in order, and its exit. */
class Channel {
  private readonly queue: NewMessage[] = [];
  private wake: (() => void) | undefined;
  private readonly exited: Promise<void>;
  private ended = false;

  constructor(private readonly child: ChildProcess) {
    child.on("message", (m: NewMessage) => {
      this.queue.push(m);
      this.wake?.();
    });
    this.exited = new Promise((resolve) => {
      child.once("exit", () => {
        this.ended = true;
        this.wake?.();
        resolve();
      });
    });
    child.on("error", () => {});
  }

  /** The next message if it is one of `kinds`; undefined once the child exits, or is killed
   * for saying nothing (or something else) for RESTART_STEP_MS. */
  async next(kinds: NewMessage["kind"][]): Promise<NewMessage | undefined> {
    const deadline = Date.now() + RESTART_STEP_MS;
    for (;;) {
      const m = this.queue.shift();
      if (m) {
        if (kinds.includes(m.kind)) return m;
        continue;
      }
      if (this.ended || Date.now() >= deadline) return undefined;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        setTimeout(resolve, Math.max(1, deadline - Date.now())).unref();
      });
      this.wake = undefined;
    }
  }

  /** Resolves once the child has exited, SIGKILLing it first: then it owns nothing. */
  async gone(): Promise<void> {
    if (!this.ended) this.child.kill("SIGKILL");
    await this.exited;
  }

  /** The child serves on its own: it must not keep this process alive, nor die with it. */
  release(): void {
    this.child.unref();
    (this.child.channel as { unref?: () => void } | null | undefined)?.unref?.();
  }
}

// ---- the new process's side ----------------------------------------------------------------

/** The listening sockets a restart hands over: the planes', and control.socket's with where it
 * listens (the old process's runtime directory, src/sandbox/hidden-socket.ts). */
export interface Listeners {
  data: object;
  control: object;
  socket?: { handle: object; path: string };
}

/** What the new process received: the hand-off for its Herd, the listeners, the instance. */
export interface TakeOver {
  handOff: HerdHandOff;
  listeners: Listeners;
  instanceId: string;
  /** A cluster node's state, and its fence watchdog's input. */
  cluster?: ClusterAdoption;
  /** Tells the old process a step is done (through the test hook first). */
  adopted(herd: Herd): Promise<void>;
  serving(herd: Herd): Promise<void>;
  /** Activity the old process reports on the connections it still serves. */
  onTouch(touch: (sessionId: string) => void): void;
}

/** The addresses the old process listens on, when this process is a restart's new one. */
export function takeOverAddresses(env = process.env): TakeOverAddresses | undefined {
  const raw = env[TAKE_OVER_ENV];
  if (!raw || !process.send) return undefined;
  return JSON.parse(raw) as TakeOverAddresses;
}

/** To the old process, if it is still there (with a callback, a failed write is no crash). */
function tell(message: NewMessage): void {
  if (process.connected) process.send?.(message, undefined, {}, () => {});
}

/** The config failed: say why and leave (the old process keeps serving). */
export function refuseTakeOver(reason: string): void {
  tell({ kind: "refused", reason });
  if (process.connected) process.disconnect?.();
}

/**
 * Says the config is good, then waits for the state and its handles. Rejects when the old
 * process goes before the state arrived whole (this process then owns nothing and must exit).
 */
export async function receiveTakeOver(): Promise<TakeOver> {
  const lifelines: Socket[] = [];
  const outputs: { stdout: Readable[]; stderr: Readable[] } = { stdout: [], stderr: [] };
  const listeners: Partial<Record<"data" | "control" | "socket", object>> = {};
  let watchdog: Writable | undefined;
  const touches: ((id: string) => void)[] = [];
  const state = new Promise<StateMessage>((resolve, reject) => {
    const onMessage = (m: OldMessage, handle: unknown) => {
      if (m.kind === "handle") {
        if (m.role === "listener") listeners[m.name] = handle as object;
        else if (m.role === "watchdog") watchdog = handle as Writable;
        else if (m.role === "lifeline") lifelines[m.index] = handle as Socket;
        else outputs[m.role][m.index] = handle as Readable;
      } else if (m.kind === "state") {
        resolve(m);
      } else {
        for (const id of m.sessionIds) for (const touch of touches) touch(id);
      }
    };
    process.on("message", onMessage);
    process.once("disconnect", () => reject(new Error("the old process went before the state")));
  });
  await step("new", "validated");
  tell({ kind: "validated" });
  const s = await state;
  await step("new", "received");
  // The channel must not keep this process alive once the old one leaves.
  (process.channel as { unref?: () => void } | undefined)?.unref?.();
  const handOff: HerdHandOff = {
    revision: s.revision,
    events: s.events,
    lifelines: s.lifelines.map((killFile, i) => {
      const socket = lifelines[i];
      if (!socket) throw new Error(`lifeline ${i} (${killFile}) did not arrive`);
      return new Lifeline(killFile, socket);
    }),
    sessions: s.sessions.map((session, i) => ({
      ...session,
      stdout: outputs.stdout[i] ?? null,
      stderr: outputs.stderr[i] ?? null,
    })),
  };
  const { data, control, socket } = listeners;
  if (!data || !control) throw new Error("the listening sockets did not arrive");
  if (s.socketPath && !socket) throw new Error("the control socket did not arrive");
  if (s.cluster && !watchdog) throw new Error("the fence watchdog's input did not arrive");
  return {
    handOff,
    listeners: {
      data,
      control,
      ...(socket && s.socketPath && { socket: { handle: socket, path: s.socketPath } }),
    },
    instanceId: s.instanceId,
    ...(s.cluster && watchdog && { cluster: { state: s.cluster, watchdog } }),
    async adopted(herd) {
      await step("new", "adopted", herd);
      tell({ kind: "adopted", sessions: handOff.sessions.length });
    },
    async serving(herd) {
      await step("new", "serving", herd);
      tell({ kind: "serving" });
    },
    onTouch(touch) {
      touches.push(touch);
    },
  };
}
