// `herd watch`: follows WatchSessions, one line per event (or one JSON object per line), and
// when cut off for falling behind, resumes from the last revision printed: nothing is missed.

import { toJson } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  type SessionEvent,
  SessionEventSchema,
  SessionEventType,
} from "../../gen/herd/v1/herd_pb.ts";
import type { HerdClient } from "./client.ts";

export interface WatchOptions {
  pool?: string;
  session?: string;
  snapshot: boolean;
  since?: number;
  json: boolean;
  /** Stop after this many events (scripts, tests). */
  count?: number;
  signal?: AbortSignal;
}

export function formatEvent(e: SessionEvent): string {
  const type = SessionEventType[e.type]!.toLowerCase();
  const time = e.time ? timestampDate(e.time).toISOString().slice(11, 23) : "--:--:--.---";
  const fields: string[] = [];
  if (e.pool) fields.push(`pool=${e.pool}`);
  if (e.sessionId) fields.push(`session=${e.sessionId}`);
  if (e.workerId) fields.push(`worker=${e.workerId}`);
  if (e.workerPid) fields.push(`pid=${e.workerPid}`);
  if (e.type === SessionEventType.QUEUE_CHANGED) fields.push(`queued=${e.queued}`);
  if (e.reason) fields.push(`reason=${JSON.stringify(e.reason)}`);
  if (e.exit) {
    if (e.exit.exitCode !== undefined) fields.push(`exit=${e.exit.exitCode}`);
    if (e.exit.signal) fields.push(`signal=${e.exit.signal}`);
    if (e.exit.oom) fields.push("oom");
  }
  const line = `${time} #${e.revision} ${type.padEnd(19)} ${fields.join(" ")}`.trimEnd();
  const tail = e.exit?.stderrTail.length
    ? `\n  stderr: ${e.exit.stderrTail.join("\n          ")}`
    : "";
  return line + tail;
}

export async function watch(
  { client }: HerdClient,
  opts: WatchOptions,
  out: (text: string) => void,
  onReconnect: (why: string) => void,
): Promise<void> {
  let since = BigInt(opts.since ?? 0);
  let snapshot = opts.snapshot;
  let seen = 0;
  for (;;) {
    // Leaving the loop early does not end the call by itself: abort it, or it stays open.
    const call = new AbortController();
    const stopCall = () => call.abort();
    opts.signal?.addEventListener("abort", stopCall);
    try {
      const stream = client.watchSessions(
        {
          pool: opts.pool ?? "",
          sessionId: opts.session ?? "",
          snapshot,
          sinceRevision: since,
          // `herd watch` follows everything, the data plane's connections included.
          connectionEvents: true,
        },
        { signal: call.signal },
      );
      for await (const e of stream) {
        out(opts.json ? JSON.stringify(toJson(SessionEventSchema, e)) : formatEvent(e));
        // Snapshot entries carry the snapshot's revision; resuming after it is exact.
        if (e.revision > since) since = e.revision;
        if (opts.count !== undefined && ++seen >= opts.count) return;
      }
      return; // the server ended the stream cleanly
    } catch (err) {
      const ce = ConnectError.from(err);
      if (opts.signal?.aborted || ce.code === Code.Canceled) return;
      // Cut off for falling behind: resume right after the last event printed.
      if (ce.code !== Code.ResourceExhausted) throw err;
      onReconnect(ce.rawMessage);
      snapshot = false;
    } finally {
      opts.signal?.removeEventListener("abort", stopCall);
      call.abort();
    }
  }
}
