import { describe, expect, it } from "vitest";
import type { SessionLogs } from "../core/index.ts";
import { isHerdError } from "../core/index.ts";
import { logStream, MAX_BACKLOG_BYTES } from "./log-stream.ts";

/** A session's logs as the pool gives them: held bytes, then writes, until it ends. */
function fakeLogs(held: string) {
  const listeners = new Set<(chunk: Buffer) => void>();
  const ended = new AbortController();
  const logs: SessionLogs = {
    ended: ended.signal,
    read: () => Buffer.from(held),
    follow(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
  return {
    logs,
    write: (text: string | Buffer) => {
      for (const l of listeners) l(Buffer.from(text));
    },
    end: () => ended.abort(),
    listeners,
  };
}

describe("logStream", () => {
  it("sends the held part, then (follow) each later write, and ends with the session", async () => {
    const f = fakeLogs("held\n");
    const it = logStream(f.logs, true, new AbortController().signal);
    expect(Buffer.from((await it.next()).value!).toString()).toBe("held\n");
    const next = it.next();
    f.write("one\n");
    f.write("two\n");
    // Writes queued while the reader was away go out merged, in order.
    expect(Buffer.from((await next).value!).toString()).toBe("one\ntwo\n");
    const last = it.next();
    f.end();
    expect((await last).done).toBe(true);
    expect(f.listeners.size).toBe(0);
  });

  it("without follow, ends after the held part", async () => {
    const f = fakeLogs("held\n");
    const seen: string[] = [];
    for await (const piece of logStream(f.logs, false, new AbortController().signal)) {
      seen.push(Buffer.from(piece).toString());
    }
    expect(seen).toEqual(["held\n"]);
  });

  it("cuts off a reader that falls more than the backlog behind, and unsubscribes", async () => {
    const f = fakeLogs("");
    const it = logStream(f.logs, true, new AbortController().signal);
    const first = it.next(); // subscribes; nothing held
    f.write(Buffer.alloc(1024));
    await first;
    for (let i = 0; i <= MAX_BACKLOG_BYTES / 65_536; i++) f.write(Buffer.alloc(65_536));
    const err = await (async () => {
      try {
        for (;;) if ((await it.next()).done) return undefined;
      } catch (e) {
        return e;
      }
    })();
    expect(isHerdError(err, "resource_exhausted")).toBe(true);
    expect(f.listeners.size).toBe(0);
  });
});
