import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterEach, describe, expect, it } from "vitest";
import { SessionEventType } from "../../gen/herd/v1/herd_pb.ts";
import {
  type Harness,
  herdClient,
  PROTOCOLS,
  startHarness,
  streamEndCode,
} from "../../test/helpers/control-plane-harness.ts";
import { pidAlive, waitForPidsGone } from "../../test/helpers/processes.ts";
import type { HerdEvent } from "../core/index.ts";

const HOLD_CLIENT = fileURLToPath(new URL("../../test/fixtures/hold-client.ts", import.meta.url));

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

async function until(cond: () => boolean, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The events of the directory from now on, collected as they come. */
function record(harness: Harness): HerdEvent[] {
  const events: HerdEvent[] = [];
  const sub = harness.herd.subscribe();
  (async () => {
    for await (const e of sub) events.push(e);
  })().catch(() => {});
  return events;
}

describe("HoldSession: the dead-man's switch", () => {
  it.each(PROTOCOLS)(
    "%s: a holder SIGKILLed → the session ends once its reconnect window passes, and its worker tree dies",
    async (protocol) => {
      h = await startHarness([{ reuse: false, disconnectGraceMs: 300 }]);
      const events = record(h);
      const child = spawn(
        process.execPath,
        ["--import", "tsx", HOLD_CLIENT, h.cp.url, "doomed", protocol],
        {
          stdio: ["ignore", "pipe", "inherit"],
        },
      );
      try {
        const workerPid = await new Promise<number>((resolve, reject) => {
          child.stdout!.setEncoding("utf8").on("data", (d: string) => {
            const m = /held (\d+)/.exec(d);
            if (m) resolve(Number(m[1]));
          });
          child.once("exit", (code) => reject(new Error(`hold client exited early (${code})`)));
        });
        expect(h.herd.lookup("doomed")?.workerPid).toBe(workerPid);
        expect(h.herd.lookup("doomed")?.connections).toBe(1); // the hold lease
        const killedAt = Date.now();
        child.kill("SIGKILL");
        await until(() => h!.herd.lookup("doomed") === undefined, 3300);
        expect(await waitForPidsGone([workerPid], 3000)).toEqual([]);
        expect(Date.now() - killedAt).toBeLessThan(3300);
        await until(() => events.some((e) => e.type === "session_expired"));
        expect(events.find((e) => e.type === "session_expired")?.reason).toBe(
          "reconnect_window_expired",
        );
      } finally {
        child.kill("SIGKILL");
      }
    },
  );

  it("a dropped hold stream keeps the session for disconnect_grace; a HoldSession within it re-attaches to the same worker", async () => {
    h = await startHarness([{ reuse: false, disconnectGraceMs: 1500 }], { heartbeatMs: 50 });
    const events = record(h);
    const c = herdClient("grpc", h.cp.url);
    const hold = (signal: AbortSignal) =>
      c.holdSession({ sessionId: "blip" }, { signal })[Symbol.asyncIterator]();
    const drop = new AbortController();
    const first = (await hold(drop.signal).next()).value!;
    const pid = first.kind.case === "session" ? first.kind.value.workerPid : 0;
    drop.abort(); // a transient stream error, as the client sees it
    await until(() => h!.herd.lookup("blip")?.reconnectDeadline !== undefined);
    const listed = (await c.listSessions({})).sessions[0]!;
    expect(listed.reconnectDeadline).toBeDefined();
    const stop = new AbortController();
    const again = (await hold(stop.signal).next()).value!;
    expect(again.kind.case === "session" && again.kind.value.workerPid).toBe(pid);
    expect(h.herd.lookup("blip")?.reconnectDeadline).toBeUndefined();
    await new Promise((r) => setTimeout(r, 2000)); // well past the first window
    expect(h.herd.lookup("blip")?.workerPid).toBe(pid);
    // The holder goes for good: the session ends when the (new) window runs out.
    stop.abort();
    await until(() => h!.herd.lookup("blip") === undefined);
    expect(await waitForPidsGone([pid], 5000)).toEqual([]);
    const ends = events.filter((e) => e.sessionId === "blip" && e.type.startsWith("session_"));
    expect(ends.map((e) => `${e.type}:${e.reason ?? ""}`)).toEqual([
      "session_acquired:",
      "session_expired:reconnect_window_expired",
    ]);
  });

  it("with disconnect_grace 0 a dropped hold ends its session at once (released: disconnect)", async () => {
    h = await startHarness([{ reuse: false, disconnectGraceMs: 0 }]);
    const events = record(h);
    const c = herdClient("connect-h2", h.cp.url);
    const drop = new AbortController();
    await c
      .holdSession({ sessionId: "now" }, { signal: drop.signal })
      [Symbol.asyncIterator]()
      .next();
    drop.abort();
    await until(() => events.some((e) => e.type === "session_released"));
    expect(events.find((e) => e.type === "session_released")?.reason).toBe("disconnect");
  });

  it("sends the session first, then heartbeats, each with the hold id and grace", async () => {
    h = await startHarness([{ heartbeatGraceMs: 3000 }], { heartbeatMs: 50 });
    const c = herdClient("connect-h1", h.cp.url);
    const stop = new AbortController();
    const kinds: string[] = [];
    const ids = new Set<string>();
    try {
      for await (const m of c.holdSession({ sessionId: "hb" }, { signal: stop.signal })) {
        kinds.push(m.kind.case!);
        ids.add(m.holdId);
        expect(Number(m.heartbeatGrace?.seconds)).toBe(3);
        if (m.kind.case === "heartbeat") expect(m.kind.value.holdExpiresAt).toBeDefined();
        if (kinds.length === 3) stop.abort();
      }
    } catch (err) {
      expect(ConnectError.from(err).code).toBe(Code.Canceled);
    }
    expect(kinds).toEqual(["session", "heartbeat", "heartbeat"]);
    expect(ids.size).toBe(1);
    await until(() => h!.herd.lookup("hb") === undefined);
  });

  it("a hold not renewed within heartbeat_grace ends the session (expired: hold_expired)", async () => {
    h = await startHarness([{ heartbeatGraceMs: 300 }], { heartbeatMs: 50 });
    const events = record(h);
    const c = herdClient("grpc", h.cp.url);
    const t0 = Date.now();
    // A holder that reads but never renews: a paused SDK, a cut back channel.
    const silent = c.holdSession({ sessionId: "silent" })[Symbol.asyncIterator]();
    expect(await streamEndCode(silent)).toBe(Code.DeadlineExceeded);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    expect(h.herd.lookup("silent")).toBeUndefined();
    await until(() => events.some((e) => e.type === "session_expired"));
    expect(events.find((e) => e.type === "session_expired")?.reason).toBe("hold_expired");
  });

  it("RenewHold keeps a hold alive past its grace; unknown holds are NOT_FOUND", async () => {
    // A grace a loaded CI machine cannot stall past between two renewals 100 ms apart.
    h = await startHarness([{ heartbeatGraceMs: 1000 }], { heartbeatMs: 50 });
    const c = herdClient("connect-h2", h.cp.url);
    const stop = new AbortController();
    const it = c
      .holdSession({ sessionId: "kept" }, { signal: stop.signal })
      [Symbol.asyncIterator]();
    const first = (await it.next()).value!;
    const t0 = Date.now();
    while (Date.now() - t0 < 2500) {
      const r = await c.renewHold({ sessionId: "kept", holdId: first.holdId });
      expect(r.holdExpiresAt).toBeDefined();
      await it.next(); // keep reading heartbeats
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(h.herd.lookup("kept")).toBeDefined();
    await expect(c.renewHold({ sessionId: "kept", holdId: "nope" })).rejects.toMatchObject({
      code: Code.NotFound,
    });
    await expect(c.renewHold({ sessionId: "other", holdId: first.holdId })).rejects.toMatchObject({
      code: Code.NotFound,
    });
    stop.abort();
    await until(() => h!.herd.lookup("kept") === undefined);
    await expect(c.renewHold({ sessionId: "kept", holdId: first.holdId })).rejects.toMatchObject({
      code: Code.NotFound,
    });
  });

  it("a session released elsewhere ends its hold stream with FAILED_PRECONDITION", async () => {
    h = await startHarness();
    const c = herdClient("grpc-web", h.cp.url);
    const it = c.holdSession({ sessionId: "shared" })[Symbol.asyncIterator]();
    await it.next();
    await herdClient("grpc", h.cp.url).releaseSession({ sessionId: "shared" });
    const err = await it.next().then(
      () => undefined,
      (e: unknown) => ConnectError.from(e),
    );
    expect(err?.code).toBe(Code.FailedPrecondition);
    expect(err?.rawMessage).toBe("session shared was released");
  });

  it("attaches to a live session instead of acquiring another worker", async () => {
    h = await startHarness();
    const c = herdClient("connect-h1", h.cp.url);
    const a = await c.acquireSession({ sessionId: "live" });
    const stop = new AbortController();
    const it = c
      .holdSession({ sessionId: "live" }, { signal: stop.signal })
      [Symbol.asyncIterator]();
    const first = (await it.next()).value!;
    expect(first.kind.case === "session" && first.kind.value.workerPid).toBe(a.session!.workerPid);
    expect(pidAlive(a.session!.workerPid)).toBe(true);
    stop.abort();
    await until(() => h!.herd.lookup("live") === undefined);
  });

  it("attach_only re-attaches to a live session and never creates one", async () => {
    h = await startHarness([{}, {}]);
    const c = herdClient("grpc", h.cp.url);
    const firstEnd = (it: AsyncIterator<unknown>) => streamEndCode(it);
    const attach = (sessionId: string, pool = "") =>
      c.holdSession({ sessionId, pool, attachOnly: true })[Symbol.asyncIterator]();

    // Gone (never was, or already ended): NOT_FOUND, and no worker is started for it.
    expect(await firstEnd(attach("nobody"))).toBe(Code.NotFound);
    await c.acquireSession({ sessionId: "gone" });
    await c.releaseSession({ sessionId: "gone" });
    expect(await firstEnd(attach("gone"))).toBe(Code.NotFound);
    expect(h.herd.lookup("nobody")).toBeUndefined();
    expect(h.herd.lookup("gone")).toBeUndefined();
    expect(await firstEnd(attach(""))).toBe(Code.InvalidArgument);

    // Live: the same session and worker, held by this stream.
    const b = await c.acquireSession({ sessionId: "back" });
    expect(await firstEnd(attach("back", "w1"))).toBe(Code.FailedPrecondition);
    const stop = new AbortController();
    const it = c
      .holdSession({ sessionId: "back", attachOnly: true }, { signal: stop.signal })
      [Symbol.asyncIterator]();
    const first = (await it.next()).value!;
    expect(first.kind.case).toBe("session");
    if (first.kind.case === "session") {
      expect(first.kind.value.workerPid).toBe(b.session!.workerPid);
      expect(first.kind.value.token).toBe(b.session!.token);
    }
    expect(h.herd.lookup("back")?.connections).toBe(1); // the hold lease
    stop.abort();
    await until(() => h!.herd.lookup("back") === undefined);
  });
});

describe("WatchSessions", () => {
  it("sees a scripted scenario in order, and resumes from a revision after a reconnect", async () => {
    h = await startHarness([{ reuse: false }]);
    const c = herdClient("connect-h1", h.cp.url);
    const stop = new AbortController();
    const seen: { revision: bigint; type: SessionEventType; sessionId: string }[] = [];
    const follow = (async () => {
      try {
        for await (const e of c.watchSessions(
          { pool: "w", snapshot: true },
          { signal: stop.signal },
        )) {
          seen.push({ revision: e.revision, type: e.type, sessionId: e.sessionId });
        }
      } catch {
        // aborted below
      }
    })();
    await until(() => seen.length === 1); // SNAPSHOT_COMPLETE of an empty pool
    await c.acquireSession({ sessionId: "a" });
    await c.acquireSession({ sessionId: "b" });
    await c.releaseSession({ sessionId: "a" });
    await until(() => seen.some((e) => e.type === SessionEventType.SESSION_RELEASED));
    stop.abort();
    await follow;

    expect(seen[0]!.type).toBe(SessionEventType.SNAPSHOT_COMPLETE);
    const revisions = seen.slice(1).map((e) => e.revision);
    expect(revisions).toEqual([...revisions].sort((x, y) => (x < y ? -1 : 1)));
    for (let i = 1; i < revisions.length; i++) expect(revisions[i]! - revisions[i - 1]!).toBe(1n);
    const sessionEvents = seen.filter(
      (e) => e.sessionId !== "" && e.type !== SessionEventType.SNAPSHOT_COMPLETE,
    );
    expect(
      sessionEvents
        .filter((e) =>
          [SessionEventType.SESSION_ACQUIRED, SessionEventType.SESSION_RELEASED].includes(e.type),
        )
        .map((e) => `${SessionEventType[e.type]} ${e.sessionId}`),
    ).toEqual(["SESSION_ACQUIRED a", "SESSION_ACQUIRED b", "SESSION_RELEASED a"]);

    // Reconnect after missing some events: the replay starts right after the last one seen.
    const last = seen.at(-1)!.revision;
    await c.releaseSession({ sessionId: "b" });
    const again: bigint[] = [];
    const types: SessionEventType[] = [];
    const stop2 = new AbortController();
    try {
      for await (const e of c.watchSessions({ sinceRevision: last }, { signal: stop2.signal })) {
        again.push(e.revision);
        types.push(e.type);
        if (e.type === SessionEventType.SESSION_RELEASED) stop2.abort();
      }
    } catch {
      // aborted
    }
    expect(again[0]).toBe(last + 1n);
    expect(types).toContain(SessionEventType.SESSION_RELEASED);
  });

  it("a snapshot lists live sessions, filtered by session id", async () => {
    h = await startHarness();
    const c = herdClient("grpc", h.cp.url);
    await c.acquireSession({ sessionId: "x" });
    await c.acquireSession({ sessionId: "y" });
    const stop = new AbortController();
    const got: string[] = [];
    try {
      for await (const e of c.watchSessions(
        { snapshot: true, sessionId: "y" },
        { signal: stop.signal },
      )) {
        got.push(`${SessionEventType[e.type]} ${e.session?.sessionId ?? ""}`.trim());
        if (e.type === SessionEventType.SNAPSHOT_COMPLETE) stop.abort();
      }
    } catch {
      // aborted
    }
    expect(got).toEqual(["SNAPSHOT y", "SNAPSHOT_COMPLETE"]);
  });

  it("a resume revision older than the retained history is OUT_OF_RANGE; bad filters are refused", async () => {
    h = await startHarness([{}], {}, { eventHistory: 2 });
    const c = herdClient("connect-h2", h.cp.url);
    for (const id of ["p", "q", "r"]) await c.acquireSession({ sessionId: id });
    const first = (req: Parameters<typeof c.watchSessions>[0]) =>
      c
        .watchSessions(req)
        [Symbol.asyncIterator]()
        .next()
        .then(
          () => "ok",
          (e: unknown) => Code[ConnectError.from(e).code],
        );
    expect(await first({ sinceRevision: 1n })).toBe("OutOfRange");
    expect(await first({ pool: "nope" })).toBe("NotFound");
    expect(await first({ sessionId: "bad id" })).toBe("InvalidArgument");
  });
  it("a watcher that stops reading is cut off with RESOURCE_EXHAUSTED; the pool never waits", async () => {
    h = await startHarness([{ min: 1, max: 1 }]);
    const c = herdClient("grpc", h.cp.url);
    const stalled = c.watchSessions({ snapshot: true })[Symbol.asyncIterator]();
    await stalled.next(); // SNAPSHOT_COMPLETE: the stream is live; from here nobody reads
    const t0 = Date.now();
    // Each cycle is 2 events; 1024 undelivered ones (beyond what HTTP/2 flow control and the
    // sockets buffer) cut the watcher off. The pool goes on at full speed meanwhile.
    for (let i = 0; i < 1500; i++) {
      await h.herd.acquire("w", `s${i}`);
      await h.herd.release(`s${i}`);
      await new Promise((r) => setImmediate(r)); // let the server try to write
    }
    expect(Date.now() - t0).toBeLessThan(20_000);
    expect(await streamEndCode(stalled)).toBe(Code.ResourceExhausted);
    expect((await c.getStats({})).pools[0]!.sessions).toBe(0);
  });
});
