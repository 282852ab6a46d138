// The dead-man's switch of one daemon generation's cgroup-contained workers.
//
// A SIGKILLed daemon cannot write cgroup.kill itself, and a worker tree that must outlive its
// daemon for a restart has no pdeathsig (process-tree.ts). So the daemon starts one tiny shell
// (own session, so terminal signals do not reach it) blocked reading a socketpair whose other
// end only the daemons owning this generation's workers hold. It first reads the path of the
// generation's daemon-wide cgroup.kill (`arm`); when the last holder dies for any reason the
// kernel closes that end, the next read sees end-of-file, and the shell writes `1` to it —
// ending every worker tree of the generation at once. A clean close says "stop" first, and the
// shell leaves without killing. It has no children, so nothing can be orphaned whatever
// happens to it.
//
// The generation's cgroup is named after the reaper (cgroup-owner.ts), not after the daemon:
// the reaper lives exactly as long as some daemon holds the lifeline, so no herd's stale sweep
// (whatever its version) takes a generation whose daemon has restarted for dead.
//
// The held end is the generation's *lifeline*: a restart (src/cli/restart.ts) passes a copy to
// the successor daemon over its IPC channel (SCM_RIGHTS), so during the hand-over both daemons
// hold it and the switch fires only once neither does. A successor holds its predecessors'
// lifelines as `Lifeline`s made from the received sockets.

import { type ChildProcess, spawn } from "node:child_process";
import type { Socket } from "node:net";
import { type DaemonIdentity, ownIdentity } from "./cgroup-owner.ts";
import { procStat } from "./proc-stat.ts";

const SCRIPT =
  'IFS= read -r file; IFS= read -r word; [ "$word" = stop ] || [ -z "$file" ] || echo 1 > "$file"';

/** A held end of a reaper's socketpair: own (spawned here) or received from a predecessor. */
export class Lifeline {
  constructor(
    /** The cgroup.kill file its reaper writes: which generation's workers it keeps alive. */
    readonly killFile: string,
    readonly socket: Socket,
  ) {
    socket.on("error", () => {});
    // A lifeline must never keep the daemon's event loop alive.
    socket.unref();
  }

  /**
   * Lets go of this generation: once no holder is left its reaper kills what is still in its
   * cgroup. Never "stop" a shared lifeline: another holder (the predecessor still serving its
   * last connections) may still own workers there.
   */
  drop(): void {
    this.socket.destroy();
  }
}

export class Reaper {
  private readonly child: ChildProcess;
  /** Who the generation's cgroup is named after (its start time tells a reused pid). */
  readonly identity: DaemonIdentity;
  private armed: Lifeline | undefined;

  constructor(onExit: () => void) {
    this.child = spawn("/bin/sh", ["-c", SCRIPT], {
      detached: true,
      stdio: ["pipe", "ignore", "ignore"],
    });
    this.child.on("error", () => {});
    this.child.once("exit", onExit);
    this.child.unref();
    (this.child.stdin as Socket).on("error", () => {});
    const pid = this.child.pid ?? 0;
    this.identity = { ...ownIdentity(), pid, start: procStat(pid)?.startTime ?? 0 };
  }

  /** Tells the reaper which cgroup.kill to write; from now on it guards the generation. */
  arm(killFile: string): Lifeline {
    const stdin = this.child.stdin as Socket;
    stdin.write(`${killFile}\n`);
    this.armed = new Lifeline(killFile, stdin);
    return this.armed;
  }

  get lifeline(): Lifeline | undefined {
    return this.armed;
  }

  /** Stops the switch without killing anything (only while this daemon is its one holder). */
  stop(): void {
    this.child.removeAllListeners("exit");
    (this.child.stdin as Socket).end(this.armed ? "stop\n" : "\nstop\n");
  }
}
