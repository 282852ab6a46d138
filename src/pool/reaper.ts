// The daemon's dead-man's switch for cgroup-contained workers.
//
// A worker root has pdeathsig, but its setsid'd grandchildren do not, and a SIGKILLed daemon
// cannot write cgroup.kill itself. So the daemon starts one tiny sidecar (own session, so
// terminal signals do not reach it) whose pdeathsig is SIGTERM: when the daemon dies for any
// reason, the kernel signals the sidecar, which writes `1` to the daemon-wide cgroup.kill —
// ending every worker tree of this daemon — and exits. A clean close stops it first.

import { type ChildProcess, spawn } from "node:child_process";

const SCRIPT =
  "trap 'echo 1 > \"$0\"; kill $! 2>/dev/null; exit 0' TERM; trap 'kill $! 2>/dev/null; exit 0' USR1; sleep 2147483647 & wait";

export class Reaper {
  private readonly child: ChildProcess;

  constructor(setpriv: string, killFile: string) {
    this.child = spawn(setpriv, ["--pdeathsig", "TERM", "--", "/bin/sh", "-c", SCRIPT, killFile], {
      detached: true,
      stdio: "ignore",
    });
    this.child.on("error", () => {});
    this.child.unref();
  }

  /** Stops the sidecar without killing anything. */
  stop(): void {
    this.child.kill("SIGUSR1");
  }
}
