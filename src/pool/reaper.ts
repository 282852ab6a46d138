// The daemon's dead-man's switch for cgroup-contained workers: one per daemon generation.
//
// A worker root has pdeathsig, but its setsid'd grandchildren do not, and a SIGKILLed daemon
// cannot write cgroup.kill itself. So the daemon starts one tiny shell (own session, so
// terminal signals do not reach it) blocked reading a pipe (a socketpair) whose only writers
// are the daemons that own this generation's workers. When the last of them dies for any
// reason the kernel closes the pipe, the read sees end-of-file, and the shell writes `1` to
// the generation's daemon-wide cgroup.kill — ending every worker tree in it at once. A clean
// close says "stop" first, and the shell leaves without killing.
// The shell has no children, so nothing can be orphaned whatever happens to it.
//
// The write end is the generation's *lifeline*: a restart (src/cli/restart.ts) passes a copy
// to the successor daemon over its IPC channel (SCM_RIGHTS), so during the hand-over both
// daemons hold it and the switch fires only once neither does. A successor holds its
// predecessors' lifelines as `Lifeline`s made from the received sockets.

import { type ChildProcess, spawn } from "node:child_process";
import type { Socket } from "node:net";

const SCRIPT = 'IFS= read -r word; [ "$word" = stop ] || echo 1 > "$0"';

/** A held write end of a reaper's pipe: own (spawned here) or received from a predecessor. */
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
  readonly lifeline: Lifeline;

  constructor(killFile: string) {
    this.child = spawn("/bin/sh", ["-c", SCRIPT, killFile], {
      detached: true,
      stdio: ["pipe", "ignore", "ignore"],
    });
    this.child.on("error", () => {});
    this.child.unref();
    this.lifeline = new Lifeline(killFile, this.child.stdin as Socket);
  }

  /** Stops the switch without killing anything (only while this daemon is its one holder). */
  stop(): void {
    this.lifeline.socket.end("stop\n");
  }
}
