// The control plane's Unix socket, out of every worker's reach: it listens inside the daemon's
// runtime directory (hidden from every sandboxed worker, runtime-dir.ts), and the configured
// path is a symlink to it, which the CLI and SDKs follow and a worker cannot (the directory it
// points into is an empty tmpfs in its mount namespace). A worker launched before the socket
// existed is covered as well as one launched after: the whole directory is hidden, not the file.
//
// Restart (src/cli/restart.ts): the successor serves the predecessor's listening socket (its
// handle is handed over) under a hard link in its own runtime directory, then swaps the symlink
// to it in one rename: a client dialing meanwhile reaches the same listening socket by either
// name, and the predecessor's directory may go with it. A predecessor whose successor died
// before serving points the symlink back at its own name, which it never removed.
//
// Invariant: the symlink exists from `publish` (or `takeOver`) until `close`, and `close`
// removes it only while it still points at this daemon's socket. Single-threaded.

import {
  linkSync,
  lstatSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
} from "node:fs";
import { createConnection } from "node:net";
import { join } from "node:path";
import { acquireRuntimeDir, releaseRuntimeDir } from "./runtime-dir.ts";

export class HiddenSocket {
  /** Where the control plane listens. */
  readonly listenPath: string;
  private published = false;
  private closed = false;

  constructor(readonly publicPath: string) {
    this.listenPath = join(acquireRuntimeDir(), "control.sock");
  }

  /** Points the configured path at the socket; refuses one another live daemon serves. */
  async publish(): Promise<void> {
    let stat: ReturnType<typeof lstatSync> | undefined;
    try {
      stat = lstatSync(this.publicPath);
    } catch {}
    if (stat) {
      if (await answers(this.publicPath)) {
        throw new Error(
          `control.socket ${this.publicPath}: another process is serving on this socket`,
        );
      }
      if (!stat.isSocket() && !stat.isSymbolicLink()) {
        throw new Error(`control.socket ${this.publicPath}: exists and is not a socket`);
      }
      unlinkSync(this.publicPath);
    }
    symlinkSync(this.listenPath, this.publicPath);
    this.published = true;
  }

  /** A restart's successor: `previous` is the predecessor's socket, whose listening handle this
   * process serves; the configured path points here from now on. */
  takeOver(previous: string): void {
    linkSync(previous, this.listenPath);
    this.point();
  }

  /** The successor died before serving: the configured path points at this daemon's again. */
  repoint(): void {
    if (this.published && !this.closed) this.point();
  }

  /** Replaces the symlink in one rename: it never dangles, nor is missing. */
  private point(): void {
    const next = `${this.publicPath}.${process.pid}.next`;
    rmSync(next, { force: true });
    symlinkSync(this.listenPath, next);
    renameSync(next, this.publicPath);
    this.published = true;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      if (this.published && readlinkSync(this.publicPath) === this.listenPath) {
        unlinkSync(this.publicPath);
      }
    } catch {}
    releaseRuntimeDir();
  }
}

function answers(path: string): Promise<boolean> {
  try {
    statSync(path);
  } catch {
    return Promise.resolve(false); // a dangling symlink: its daemon is gone
  }
  return new Promise((resolve) => {
    const s = createConnection({ path });
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}
