// The fencing dead-man's switch: a tiny bash process, outside the daemon, that SIGKILLs the
// process group of every worker serving a session once the deadline it was given passes
// without a renewal (node-lease.ts gives it half a margin after the daemon's own fencing, so a
// live daemon always fences first). It exists for the one case the daemon cannot handle itself: the daemon
// frozen (SIGSTOP, a stalled VM, swap death) while its workers run on. Without it, the
// cluster would hand a frozen node's ids to other nodes while the old workers still serve.
//
// Protocol (one line each, daemon → watchdog): `until <epoch ms>` (the deadline, moved on each
// renewal), `add <pgid>` / `del <pgid>` (session workers), `stop` (clean exit, kill nothing).
// End of input (the daemon died) kills every listed group too. Each worker is the leader of
// its own process group, so its pid is the group id. The shell has no children of its own.
//
// Restart in place: the input (one end of a socketpair) is handed to the successor, which
// writes on it (`FenceWatchdog.inherit`); the old process then lets go of its end without
// `stop` (`release`). End of input needs both ends closed: a node whose both processes die is
// fenced by the watchdog as before, and one that survives keeps the same watchdog and list.

import { type ChildProcess, spawn } from "node:child_process";
import type { Writable } from "node:stream";

const SCRIPT = `
declare -A pg=(); until=0
fire() { for p in "\${!pg[@]}"; do kill -KILL -- "-$p" 2>/dev/null; done; pg=(); }
while :; do
  now=\${EPOCHREALTIME/./}; now=$((now / 1000))
  if (( \${#pg[@]} > 0 && until > 0 && now >= until )); then fire; fi
  if (( \${#pg[@]} > 0 && until > now )); then
    rem=$((until - now)); printf -v t '%d.%03d' $((rem / 1000)) $((rem % 1000))
    IFS=' ' read -r -t "$t" cmd arg; rc=$?
  else
    IFS=' ' read -r cmd arg; rc=$?
  fi
  if (( rc > 128 )); then continue; fi
  if (( rc != 0 )); then fire; exit 0; fi
  case $cmd in
    until) until=$arg ;;
    add) pg[$arg]=1 ;;
    del) unset "pg[$arg]" ;;
    stop) exit 0 ;;
  esac
done
`;

export class FenceWatchdog {
  private readonly input: Writable;
  /** The shell's pid when this process spawned it (undefined for an inherited one). */
  readonly pid: number | undefined;

  /** A new watchdog, or (restart) the predecessor's, through its input handed over. */
  constructor(inherited?: Writable) {
    if (inherited) {
      this.input = inherited;
      this.pid = undefined;
    } else {
      const child: ChildProcess = spawn("bash", ["-c", SCRIPT], {
        detached: true,
        stdio: ["pipe", "ignore", "ignore"],
      });
      child.on("error", () => {});
      child.unref();
      this.input = child.stdin!;
      this.pid = child.pid;
    }
    this.input.on("error", () => {});
    (this.input as Writable & { unref?: () => void }).unref?.();
  }

  /** The input's handle, for a restart's successor (it stays open here too). */
  get handle(): Writable {
    return this.input;
  }

  /** A successor writes on the handed input now: close this end without stopping it. */
  release(): void {
    this.input.destroy();
  }

  /** Kill the listed groups if no later deadline arrives by `epochMs`. */
  until(epochMs: number): void {
    this.input.write(`until ${Math.floor(epochMs)}\n`);
  }

  add(pgid: number): void {
    if (pgid > 1) this.input.write(`add ${pgid}\n`);
  }

  remove(pgid: number): void {
    if (pgid > 1) this.input.write(`del ${pgid}\n`);
  }

  stop(): void {
    this.input.end("stop\n");
  }
}
