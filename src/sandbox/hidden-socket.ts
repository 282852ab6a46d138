// The control plane's Unix socket, out of every worker's reach: it listens inside the daemon's
// runtime directory (hidden from every sandboxed worker, runtime-dir.ts), and the configured
// path is a symlink to it, which the CLI and SDKs follow and a worker cannot (the directory it
// points into is an empty tmpfs in its mount namespace). A worker launched before the socket
// existed is covered as well as one launched after: the whole directory is hidden, not the file.
//
// Invariant: the symlink exists from `publish` until `close`, and `close` removes it only while
// it still points at this daemon's socket. Single-threaded.

import { lstatSync, readlinkSync, statSync, symlinkSync, unlinkSync } from "node:fs";
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
