// The daemon's dead-man's switch for cgroup-contained workers.
//
// A worker root has pdeathsig, but its setsid'd grandchildren do not, and a SIGKILLed daemon
// cannot write cgroup.kill itself. So the daemon starts one tiny shell (own session, so
// terminal signals do not reach it) blocked reading a pipe whose only writer is the daemon.
// When the daemon dies for any reason the kernel closes that pipe, the read sees end-of-file,
// and the shell writes `1` to the daemon-wide cgroup.kill — ending every worker tree of this
// daemon at once. A clean close says "stop" first, and the shell leaves without killing.
// The shell has no children, so nothing can be orphaned whatever happens to it.

import { type ChildProcess, spawn } from "node:child_process";
import type { Writable } from "node:stream";

const SCRIPT = 'IFS= read -r word; [ "$word" = stop ] || echo 1 > "$0"';

export class Reaper {
  private readonly child: ChildProcess;

  constructor(killFile: string) {
    this.child = spawn("/bin/sh", ["-c", SCRIPT, killFile], {
      detached: true,
      stdio: ["pipe", "ignore", "ignore"],
    });
    this.child.on("error", () => {});
    this.child.stdin?.on("error", () => {});
    // Neither the shell nor the pipe may keep the daemon's event loop alive.
    this.child.unref();
    (this.child.stdin as Writable & { unref?: () => void }).unref?.();
  }

  /** Stops the switch without killing anything. */
  stop(): void {
    this.child.stdin?.end("stop\n");
  }
}
