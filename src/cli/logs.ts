// `herd logs SESSION [--follow]`: what the session's worker wrote to stdout and stderr since
// the session began (TailSessionLogs), raw bytes to stdout; with --follow, each later write
// until the session ends or the command is interrupted.

import { Code, ConnectError } from "@connectrpc/connect";
import type { HerdClient } from "./client.ts";

export interface LogsOptions {
  session: string;
  follow: boolean;
  signal?: AbortSignal;
}

export async function logs(
  { client }: HerdClient,
  opts: LogsOptions,
  write: (data: Uint8Array) => Promise<void>,
): Promise<void> {
  const call = new AbortController();
  const stop = () => call.abort();
  opts.signal?.addEventListener("abort", stop);
  try {
    const stream = client.tailSessionLogs(
      { sessionId: opts.session, follow: opts.follow },
      { signal: call.signal },
    );
    for await (const piece of stream) await write(piece.data);
  } catch (err) {
    if (opts.signal?.aborted && ConnectError.from(err).code === Code.Canceled) return;
    throw err;
  } finally {
    opts.signal?.removeEventListener("abort", stop);
    call.abort();
  }
}
