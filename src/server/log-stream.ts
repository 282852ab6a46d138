// TailSessionLogs' stream: what a session's worker wrote, then (follow) each later write.
//
// Invariant: a slow reader never grows the daemon's memory without bound: writes not yet sent
// are queued up to MAX_BACKLOG_BYTES, beyond which the reader is cut off with
// resource_exhausted (as WatchSessions cuts off a slow watcher). Queued writes go out merged,
// up to MAX_MESSAGE_BYTES per message. The stream ends when the session ends, the call is
// cancelled or the server shuts down. Single-threaded: `follow` calls back synchronously.

import type { SessionLogs } from "../core/index.ts";
import { HerdError } from "../core/index.ts";

export const MAX_BACKLOG_BYTES = 4 * 2 ** 20;
const MAX_MESSAGE_BYTES = 256 * 1024;

export async function* logStream(
  logs: SessionLogs,
  follow: boolean,
  signal: AbortSignal,
): AsyncGenerator<Uint8Array> {
  const queue: Buffer[] = [];
  let queued = 0;
  let overflow = false;
  let wake: (() => void) | undefined;
  const poke = () => {
    wake?.();
    wake = undefined;
  };
  // Subscribe before reading what is held, in the same synchronous step: no write falls between.
  const stop = follow
    ? logs.follow((chunk) => {
        if (overflow) return;
        if (queued + chunk.length > MAX_BACKLOG_BYTES) overflow = true;
        else {
          queue.push(chunk);
          queued += chunk.length;
        }
        poke();
      })
    : () => {};
  const held = logs.read();
  const ended = AbortSignal.any([logs.ended, signal]);
  ended.addEventListener("abort", poke);
  try {
    for (let at = 0; at < held.length; at += MAX_MESSAGE_BYTES) {
      yield held.subarray(at, at + MAX_MESSAGE_BYTES);
    }
    while (follow) {
      if (overflow) {
        throw new HerdError(
          "resource_exhausted",
          `the log reader fell more than ${MAX_BACKLOG_BYTES} bytes behind; read again`,
        );
      }
      if (queue.length > 0) {
        const parts: Buffer[] = [];
        let size = 0;
        while (queue.length > 0 && size < MAX_MESSAGE_BYTES) {
          const next = queue.shift()!;
          parts.push(next);
          size += next.length;
        }
        queued -= size;
        yield parts.length === 1 ? parts[0]! : Buffer.concat(parts);
        continue;
      }
      if (ended.aborted) return;
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
  } finally {
    stop();
    ended.removeEventListener("abort", poke);
  }
}
