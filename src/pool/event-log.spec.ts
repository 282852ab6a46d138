import { describe, expect, it } from "vitest";
import type { HerdEvent } from "../core/index.ts";
import { isHerdError } from "../core/index.ts";
import { EventLog } from "./event-log.ts";

async function take(iterable: AsyncIterable<HerdEvent>, n: number): Promise<HerdEvent[]> {
  const out: HerdEvent[] = [];
  for await (const e of iterable) {
    out.push(e);
    if (out.length === n) break;
  }
  return out;
}

describe("EventLog", () => {
  it("keeps its history and each watcher's backlog within configured bounds", async () => {
    const log = new EventLog(3, 2);
    for (let i = 0; i < 10; i++) log.append({ type: "queue_changed", pool: "p", queued: i });
    expect(() => log.subscribe({ sinceRevision: 6 })).toThrow(
      /too old: the oldest retained revision is 8/,
    );
    const sub = log.subscribe();
    for (let i = 0; i < 3; i++) log.append({ type: "queue_changed", pool: "p", queued: i });
    await expect(take(sub, 3)).rejects.toThrow(/fell more than 2 events behind/);
    expect(() => new EventLog(100_001)).toThrow(/event history must be an integer 0-100000/);
    expect(() => new EventLog(10, 0)).toThrow(/watch buffer must be an integer 1-65536/);
  });

  it("numbers events 1, 2, 3... and replays from a revision, then goes live", async () => {
    const log = new EventLog();
    for (let i = 0; i < 5; i++) log.append({ type: "queue_changed", pool: "p", queued: i });
    const sub = log.subscribe({ sinceRevision: 3 });
    log.append({ type: "queue_changed", pool: "p", queued: 5 });
    const got = await take(sub, 3);
    expect(got.map((e) => e.revision)).toEqual([4, 5, 6]);
    expect(log.revision()).toBe(6);
  });

  it("keeps the revisions of events ordered elsewhere (insert), never going backwards", async () => {
    const log = new EventLog(0);
    const sub = log.subscribe();
    const at = (revision: number): HerdEvent => ({
      revision,
      type: "queue_changed",
      pool: "p",
      time: new Date(),
    });
    log.insert(at(40));
    log.insert(at(40)); // not resumable (a node-local event at the revision last read)
    log.insert(at(42));
    expect(log.revision()).toBe(42);
    expect(() => log.insert(at(41))).toThrow(/revision 41 is behind the latest 42/);
    expect((await take(sub, 3)).map((e) => e.revision)).toEqual([40, 40, 42]);
  });

  it("continues a predecessor's revisions across a restart, and numbers nothing once sealed", async () => {
    const old = new EventLog();
    for (let i = 0; i < 3; i++) old.append({ type: "queue_changed", pool: "p" });
    const watcher = old.subscribe({ sinceRevision: 1 });
    old.seal();
    // Sealed: an event after the hand-over is neither numbered nor seen.
    old.append({ type: "queue_changed", pool: "p" });
    expect(old.revision()).toBe(3);
    const successor = new EventLog();
    successor.continueFrom(old.retained(), old.revision());
    successor.append({ type: "queue_changed", pool: "p" });
    // A watcher that saw 2 at the old log resumes at the successor with 3 and 4, no gap.
    const resumed = successor.subscribe({ sinceRevision: 2 });
    expect((await take(resumed, 2)).map((e) => e.revision)).toEqual([3, 4]);
    expect((await take(watcher, 2)).map((e) => e.revision)).toEqual([2, 3]);
    expect(() => successor.continueFrom([], 9)).toThrow(/only when empty/);
  });

  it("filters by pool and session", async () => {
    const log = new EventLog();
    log.append({ type: "session_acquired", pool: "a", sessionId: "x" });
    log.append({ type: "session_acquired", pool: "b", sessionId: "y" });
    log.append({ type: "session_released", pool: "a", sessionId: "x" });
    // 0: everything retained (a subscriber that starts with the daemon's first events).
    const byPool = await take(log.subscribe({ sinceRevision: 0, filter: { pool: "b" } }), 1);
    expect(byPool[0]).toMatchObject({ revision: 2, sessionId: "y" });
    const bySession = await take(
      log.subscribe({ sinceRevision: 1, filter: { sessionId: "x" } }),
      1,
    );
    expect(bySession[0]).toMatchObject({ revision: 3, type: "session_released" });
  });

  it("gives connection events only to subscribers that take them, live and replayed", async () => {
    const log = new EventLog();
    const without = log.subscribe({ filter: { connectionEvents: false } });
    const all = log.subscribe();
    log.append({ type: "connection_opened", pool: "p", sessionId: "s" });
    log.append({ type: "session_released", pool: "p", sessionId: "s" });
    log.append({ type: "connection_closed", pool: "p", sessionId: "s" });
    log.append({ type: "session_acquired", pool: "p", sessionId: "t" });
    expect((await take(without, 2)).map((e) => e.type)).toEqual([
      "session_released",
      "session_acquired",
    ]);
    expect((await take(all, 4)).map((e) => e.revision)).toEqual([1, 2, 3, 4]);
    const replayed = log.subscribe({ sinceRevision: 1, filter: { connectionEvents: false } });
    log.append({ type: "queue_changed", pool: "p", queued: 1 });
    expect((await take(replayed, 3)).map((e) => e.revision)).toEqual([2, 4, 5]);
  });

  it("refuses a revision older than the retained history, or ahead of it", () => {
    const log = new EventLog(3);
    for (let i = 0; i < 10; i++) log.append({ type: "queue_changed", pool: "p" });
    expect(() => log.subscribe({ sinceRevision: 2 })).toThrow(
      /too old: the oldest retained revision is 8/,
    );
    expect(() => log.subscribe({ sinceRevision: 11 })).toThrow(/ahead of the latest revision 10/);
    expect(() => log.subscribe({ sinceRevision: 7 })).not.toThrow();
  });

  it("cuts off a watcher that falls behind instead of buffering without bound", async () => {
    const log = new EventLog();
    const slow = log.subscribe({ bufferLimit: 10 });
    for (let i = 0; i < 11; i++) log.append({ type: "queue_changed", pool: "p" });
    const err = await take(slow, 100).catch((e: unknown) => e);
    expect(isHerdError(err, "resource_exhausted")).toBe(true);
    // Appending never blocked, and later subscribers are unaffected.
    const fresh = log.subscribe();
    log.append({ type: "queue_changed", pool: "p" });
    expect((await take(fresh, 1))[0]?.revision).toBe(12);
  });

  it("ends subscriptions cleanly on closeAll", async () => {
    const log = new EventLog();
    const sub = log.subscribe();
    const pending = take(sub, 5);
    log.closeAll();
    expect(await pending).toEqual([]);
  });
});
