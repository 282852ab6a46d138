import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import {
  type SessionEvent,
  SessionEventSchema,
  SessionEventType as T,
  type WorkerExitSchema,
} from "../gen/herd/v1/herd_pb.ts";
import { SessionBook } from "./session-book.ts";

interface Extra {
  reason?: string;
  workerId?: string;
  exit?: MessageInitShape<typeof WorkerExitSchema>;
  /** seconds since the epoch */
  time?: number;
}

function ev(revision: number, type: T, id = "", extra: Extra = {}): SessionEvent {
  return create(SessionEventSchema, {
    revision: BigInt(revision),
    type,
    pool: "p",
    sessionId: id,
    workerId: extra.workerId ?? (id ? `w-${id}` : ""),
    workerPid: 100,
    reason: extra.reason ?? "",
    exit: extra.exit,
    time: extra.time === undefined ? undefined : { seconds: BigInt(extra.time) },
    session: id
      ? { sessionId: id, pool: "p", workerId: `w-${id}`, workerPid: 100, labels: { a: "b" } }
      : undefined,
  });
}

describe("SessionBook", () => {
  it("builds the live set from a snapshot, then follows events in revision order", () => {
    const book = new SessionBook();
    expect(book.connect("run-1")).toBe(false); // nothing to resume: watch with a snapshot
    book.apply(ev(7, T.SNAPSHOT, "a"));
    book.apply(ev(7, T.SNAPSHOT_COMPLETE));
    expect(book.revision).toBe(7n);
    expect(book.live().map((r) => r.id)).toEqual(["a"]);
    book.apply(ev(8, T.SESSION_ACQUIRED, "b"));
    book.apply(ev(9, T.SESSION_RELEASED, "a", { reason: "released" }));
    expect(book.live().map((r) => r.id)).toEqual(["b"]);
    expect(book.rows.get("a")).toMatchObject({ state: "released", reason: "released" });
    expect(book.connect("run-1")).toBe(true); // same daemon: resume from revision 9
  });

  it("ignores events it already applied, so a resumed watch repeats nothing", () => {
    const book = new SessionBook();
    book.connect("run-1");
    book.apply(ev(1, T.SESSION_ACQUIRED, "a"));
    book.apply(ev(2, T.CONNECTION_OPENED, "a"));
    expect(book.apply(ev(2, T.CONNECTION_OPENED, "a"))).toBe(false);
    expect(book.rows.get("a")!.history.map((h) => h.type)).toEqual([
      "SESSION_ACQUIRED",
      "CONNECTION_OPENED",
    ]);
  });

  it("keeps a lost session with its reason, exit and the worker's events", () => {
    const book = new SessionBook();
    book.connect("run-1");
    book.apply(ev(1, T.SESSION_ACQUIRED, "a"));
    const exit = { exitCode: 3, signal: "", oom: false, stderrTail: ["boom", "<img src=x>"] };
    book.apply(ev(2, T.SESSION_LOST, "a", { reason: "exit code 3", exit }));
    book.apply(ev(3, T.WORKER_STOPPED, "", { workerId: "w-a", reason: "exit code 3", exit }));
    const row = book.rows.get("a")!;
    expect(row).toMatchObject({ state: "lost", reason: "exit code 3" });
    expect(row.exit?.stderrTail).toEqual(["boom", "<img src=x>"]);
    expect(row.history.map((h) => h.type)).toEqual([
      "SESSION_ACQUIRED",
      "SESSION_LOST",
      "WORKER_STOPPED",
    ]);
  });

  it("ends live sessions a fresh snapshot no longer has (they ended while disconnected)", () => {
    const book = new SessionBook();
    book.connect("run-1");
    book.apply(ev(1, T.SESSION_ACQUIRED, "a"));
    book.apply(ev(2, T.SESSION_ACQUIRED, "b"));
    book.forgetRevision(); // OUT_OF_RANGE on resume
    expect(book.connect("run-1")).toBe(false);
    book.apply(ev(40, T.SNAPSHOT, "b"));
    book.apply(ev(40, T.SNAPSHOT_COMPLETE));
    expect(book.live().map((r) => r.id)).toEqual(["b"]);
    expect(book.rows.get("a")).toMatchObject({ state: "gone" });
  });

  it("on a new daemon run, ends every live session as gone and starts over", () => {
    const book = new SessionBook();
    book.connect("run-1");
    book.apply(ev(5, T.SESSION_ACQUIRED, "a"));
    expect(book.connect("run-2")).toBe(false);
    expect(book.revision).toBe(0n);
    expect(book.rows.get("a")).toMatchObject({ state: "gone", reason: "daemon restarted" });
    // The new daemon's revisions start again at 1 and are applied, not skipped.
    book.apply(ev(1, T.SNAPSHOT_COMPLETE));
    book.apply(ev(2, T.SESSION_ACQUIRED, "c"));
    expect(book.live().map((r) => r.id)).toEqual(["c"]);
  });

  it("backfills history from before the snapshot without touching what the snapshot holds live", () => {
    const book = new SessionBook();
    book.connect("run-1");
    book.apply(ev(9, T.SNAPSHOT, "live"));
    book.apply(ev(9, T.SNAPSHOT_COMPLETE));
    book.apply(ev(10, T.SESSION_RELEASED, "live")); // live, after the snapshot
    const exit = { exitCode: 3, stderrTail: ["boom"] };
    for (const e of [
      ev(2, T.SESSION_ACQUIRED, "live"),
      ev(3, T.SESSION_ACQUIRED, "old"),
      ev(4, T.SESSION_LOST, "old", { reason: "exit code 3", exit }),
      ev(5, T.WORKER_STOPPED, "", { workerId: "w-old", reason: "exit code 3", exit }),
      ev(6, T.SESSION_ACQUIRED, "again"),
      ev(7, T.SESSION_RELEASED, "again"),
    ]) {
      book.backfill(e);
    }
    expect(book.revision).toBe(10n);
    expect(book.rows.get("old")).toMatchObject({ state: "lost", reason: "exit code 3" });
    expect(book.rows.get("old")!.exit?.stderrTail).toEqual(["boom"]);
    expect(book.rows.get("old")!.history.map((h) => h.type)).toEqual([
      "SESSION_ACQUIRED",
      "SESSION_LOST",
      "WORKER_STOPPED",
    ]);
    expect(book.rows.get("again")).toMatchObject({ state: "released" });
    // The live stream's newer end stands; the older events only join the history, in order.
    expect(book.rows.get("live")).toMatchObject({ state: "released" });
    expect(book.rows.get("live")!.history.map((h) => h.revision)).toEqual([2n, 10n]);
    expect(book.backfill(ev(2, T.SESSION_ACQUIRED, "live"))).toBe(false); // once only
  });

  it("keeps at most endedLimit ended sessions, dropping the oldest", () => {
    const book = new SessionBook(2);
    book.connect("run-1");
    for (let i = 0; i < 4; i++) {
      book.apply(ev(2 * i + 1, T.SESSION_ACQUIRED, `s${i}`));
      book.apply(ev(2 * i + 2, T.SESSION_EXPIRED, `s${i}`, { time: i }));
    }
    expect([...book.rows.keys()]).toEqual(["s2", "s3"]);
  });
});
