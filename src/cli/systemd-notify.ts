// Tells systemd (sd_notify) where the daemon stands, when NOTIFY_SOCKET says it listens: READY=1
// once started; around a restart RELOADING=1 from the old process, then MAINPID=<new> with
// READY=1 from the new one (or READY=1 again from the old one when the restart did not happen).
// Through Debian's `systemd-notify` (Node has no Unix datagram sockets), which waits until the
// manager has read the message, so it is attributed to this service even if the sender is gone.
// Nothing without NOTIFY_SOCKET.

import { execFile } from "node:child_process";
import type { Logger } from "../core/index.ts";

/** Sends `fields` (VARIABLE=VALUE) in one message; resolves once sent or failed (logged). */
export function notifySystemd(logger: Logger, fields: string[]): Promise<void> {
  if (!process.env.NOTIFY_SOCKET) return Promise.resolve();
  return new Promise((resolve) => {
    execFile("systemd-notify", fields, (err) => {
      if (err) logger.warn({ err: err.message, fields }, "systemd-notify failed");
      resolve();
    });
  });
}

/** RELOADING=1 with the monotonic time systemd's Type=notify-reload asks for. */
export function reloading(): string[] {
  return ["RELOADING=1", `MONOTONIC_USEC=${process.hrtime.bigint() / 1000n}`];
}
