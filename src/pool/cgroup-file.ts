// One cgroup file a worker's session reads or writes on every acquire and release (cpu.stat,
// the memory peak, cgroup.procs), kept open: the kernel makes a cgroup file's text afresh on a
// read from offset 0, so each read is one pread instead of readFileSync's open, fstat, read and
// close (about 4 µs against 33 on the bench host), and a write is one pwrite.
//
// Invariant: at most one descriptor per CgroupFile, opened on first use (O_CLOEXEC, as every
// descriptor Node opens: a spawned worker never inherits it), dropped on any error (the next
// call opens the file again, so a removed cgroup reads as a missing file, as before) and by
// close(), which the cgroup's removal calls. Synchronous, like the cgroupfs calls it replaces;
// the read buffer is shared, since no call yields before it has copied out what it read.

import { closeSync, openSync, readSync, writeSync } from "node:fs";

let buffer = Buffer.allocUnsafe(4_096);

export class CgroupFile {
  #fd: number | undefined;

  constructor(
    readonly path: string,
    private readonly mode: "r" | "w",
  ) {}

  /** The file's whole text; throws what readFileSync would (ENOENT once the cgroup is gone). */
  read(): string {
    return this.#use((fd) => {
      let length = 0;
      for (;;) {
        if (length === buffer.length) {
          const larger = Buffer.allocUnsafe(buffer.length * 2);
          buffer.copy(larger);
          buffer = larger;
        }
        const n = readSync(fd, buffer, length, buffer.length - length, length);
        if (n === 0) return buffer.toString("utf8", 0, length);
        length += n;
      }
    });
  }

  /** Writes `value` at offset 0; throws what writeFileSync would. */
  write(value: string): void {
    this.#use((fd) => writeSync(fd, value, 0));
  }

  close(): void {
    if (this.#fd === undefined) return;
    try {
      closeSync(this.#fd);
    } catch {}
    this.#fd = undefined;
  }

  #use<T>(op: (fd: number) => T): T {
    this.#fd ??= openSync(this.path, this.mode);
    try {
      return op(this.#fd);
    } catch (err) {
      this.close();
      throw err;
    }
  }
}
