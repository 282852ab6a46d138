// examples/python-repl through the real daemon: sessions keep separate interpreters, and a
// session whose interpreter dies is reported lost with the traceback's tail.
import { describe, expect, it } from "vitest";
import { createHerdClient, type SessionEvent, SessionEventType } from "../../sdk/ts/src/index.ts";
import { daemonPerTest } from "../../test/helpers/daemon-per-test.ts";
import { pidAlive } from "../../test/helpers/processes.ts";

const CONFIG = new URL("./herd.yaml", import.meta.url).pathname;

const ctx = daemonPerTest(CONFIG);

interface ExecResult {
  pid: number;
  ok: boolean;
  stdout: string;
  result: string | null;
  error: string | null;
}

async function exec(session: string, code: string): Promise<ExecResult> {
  const res = await fetch(`${ctx.daemon.dataUrl}/exec`, {
    method: "POST",
    headers: { "X-Session-ID": session, "content-type": "text/plain" },
    body: code,
  });
  expect(res.status).toBe(200);
  return (await res.json()) as ExecResult;
}

/**
 * The session's worker process as the daemon sees it. The interpreter's own os.getpid() is its
 * pid inside the sandbox's PID namespace (this example turns isolation on), the same for all.
 */
async function workerPid(session: string): Promise<number> {
  const herd = createHerdClient({ baseUrl: ctx.daemon.controlUrl });
  const found = (await herd.sessions()).find((s) => s.sessionId === session);
  if (!found) throw new Error(`no session ${session}`);
  return found.workerPid;
}

/** Collects a session's events from a live watch until `done` says stop. */
async function watchUntil(
  session: string,
  done: (e: SessionEvent) => boolean,
  act: () => Promise<unknown>,
): Promise<SessionEvent[]> {
  const herd = createHerdClient({ baseUrl: ctx.daemon.controlUrl });
  const ac = new AbortController();
  const events: SessionEvent[] = [];
  // The first message (the session's snapshot) proves the stream is live before `act` runs.
  let live!: () => void;
  const started = new Promise<void>((r) => {
    live = r;
  });
  const watching = (async () => {
    for await (const e of herd.watch({
      sessionId: session,
      snapshot: true,
      signal: ac.signal,
    })) {
      events.push(e);
      live();
      if (done(e)) break;
    }
  })();
  await started;
  await act();
  const timer = setTimeout(() => ac.abort(), 15_000);
  await watching;
  clearTimeout(timer);
  return events;
}

describe("examples/python-repl", () => {
  it("keeps each session's variables in its own interpreter", async () => {
    await exec("alice", "x = 1\ny = 'only alice'");
    await exec("bob", "x = 2");
    expect(await workerPid("alice")).not.toBe(await workerPid("bob"));
    expect((await exec("alice", "x")).result).toBe("1");
    expect((await exec("bob", "x")).result).toBe("2");
    expect((await exec("alice", "print(y)")).stdout).toBe("only alice\n");
    const miss = await exec("bob", "y");
    expect(miss.ok).toBe(false);
    expect(miss.error).toContain("NameError: name 'y' is not defined");
    // An error is the session's, not a crash: the interpreter and its state survive it.
    expect((await exec("bob", "x + 40")).result).toBe("42");
  });

  it("reports a crashed session as lost, with its traceback tail", async () => {
    await exec("crasher", "import sys; sys.version_info.major");
    const pid = await workerPid("crasher");
    const events = await watchUntil(
      "crasher",
      (e) => e.type === SessionEventType.SESSION_LOST,
      () =>
        fetch(`${ctx.daemon.dataUrl}/crash`, {
          method: "POST",
          headers: { "X-Session-ID": "crasher" },
        }),
    );
    const lost = events.at(-1)!;
    expect(lost.type).toBe(SessionEventType.SESSION_LOST);
    expect(lost.workerPid).toBe(pid);
    expect(lost.exit?.exitCode).toBe(1);
    const tail = lost.exit?.stderrTail.join("\n") ?? "";
    expect(tail).toContain("Traceback (most recent call last):");
    expect(tail).toContain("RuntimeError: crash requested via POST /crash");
    expect(pidAlive(pid)).toBe(false);
  });

  it("reports an interpreter that exits from session code, and answers that request 502", async () => {
    await exec("quitter", "1");
    const pid = await workerPid("quitter");
    let status = 0;
    const events = await watchUntil(
      "quitter",
      (e) => e.type === SessionEventType.SESSION_LOST,
      async () => {
        const res = await fetch(`${ctx.daemon.dataUrl}/exec`, {
          method: "POST",
          headers: { "X-Session-ID": "quitter" },
          body: "import os; os._exit(3)",
        });
        status = res.status;
        await res.arrayBuffer();
      },
    );
    expect(status).toBe(502);
    const lost = events.at(-1)!;
    expect(lost.workerPid).toBe(pid);
    expect(lost.exit?.exitCode).toBe(3);
  });
});
