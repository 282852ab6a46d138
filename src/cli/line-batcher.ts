// The daemon's JSON log lines, written to their file descriptor together once per turn of the
// event loop instead of one synchronous write(2) per line. A line is written in the turn it was
// logged (after the answers that turn produced, so a log write never delays a client), in order,
// and before the process exits normally or through process.exit(); only a process killed with
// SIGKILL loses what its last turn logged. A turn that logs 64 KiB writes at once.
//
// Synchronous writes, as pino's own sync destination: a log pipe that is full (EAGAIN) makes
// the writer wait for it, never drop lines.
//
// Single-threaded: one instance per file descriptor; `write` only appends and schedules.

import { writeSync } from "node:fs";

const FLUSH_AT = 64 * 1024;
const EAGAIN_WAIT_MS = 10;

export class LineBatcher {
  #pending = "";
  #scheduled = false;
  readonly #flushSoon = () => {
    this.#scheduled = false;
    this.flush();
  };

  constructor(private readonly fd: number) {}

  /** pino's destination interface: one or more complete lines. */
  write(lines: string): boolean {
    this.#pending += lines;
    if (this.#pending.length >= FLUSH_AT) this.flush();
    else if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#flushSoon);
    }
    return true;
  }

  /** Writes every pending line now. */
  flush(): void {
    if (this.#pending === "") return;
    let bytes = Buffer.from(this.#pending);
    this.#pending = "";
    while (bytes.length > 0) {
      try {
        bytes = bytes.subarray(writeSync(this.fd, bytes));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EAGAIN") throw err;
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, EAGAIN_WAIT_MS);
      }
    }
  }
}
