// `herd restart` end to end (src/cli/restart.ts): with an SSE stream mid-flight, a WebSocket
// echoing every 50 ms, a held session (the TS SDK's HeldSession) and a watcher, the new process
// keeps every worker pid, the stream completes, no WebSocket message is lost, the hold
// re-attaches and the watcher, resuming from the last revision it saw, sees no gap; and a
// restart with a broken config on disk is refused, saying where, with nothing changed.

import { writeFileSync } from "node:fs";
import { Agent, get } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { createHerdClient } from "../../sdk/ts/src/index.ts";
import { spawnCaptured } from "../helpers/captured.ts";
import { type Daemon, HERD_BIN, startDaemon } from "../helpers/daemon.ts";
import { newLeakTag, pidAlive } from "../helpers/processes.ts";
import { daemonPids, RESTART_CONFIG, stopEveryGeneration } from "./restart-helpers.ts";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A daemon whose restarts the test follows: every herd process of its tag is stopped after. */
async function daemonWithCleanup(
  config: Record<string, unknown> = RESTART_CONFIG,
): Promise<{ daemon: Daemon; tag: string }> {
  const { tag, env } = newLeakTag();
  const daemon = await startDaemon({ config, env });
  cleanups.push(async () => {
    await stopEveryGeneration(tag, daemon);
  });
  return { daemon, tag };
}

async function whoami(dataUrl: string, id: string): Promise<number> {
  const res = await fetch(`${dataUrl}/whoami`, {
    headers: { "x-session-id": id, connection: "close" },
  });
  return ((await res.json()) as { pid: number }).pid;
}

async function restart(controlUrl: string) {
  const run = spawnCaptured(process.execPath, [
    HERD_BIN,
    "restart",
    "--addr",
    controlUrl,
    "--json",
  ]);
  const exit = await run.exited;
  return { exit, stdout: run.stdout(), stderr: run.stderr() };
}

/** GET /whoami on `agent`: the worker's pid, and whether the request reused a connection. */
function whoamiOn(agent: Agent, dataUrl: string, id: string) {
  return new Promise<{ pid: number; reused: boolean }>((resolve, reject) => {
    const req = get(`${dataUrl}/whoami`, { agent, headers: { "x-session-id": id } }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => {
        body += c;
      });
      res.on("end", () =>
        resolve({ pid: (JSON.parse(body) as { pid: number }).pid, reused: req.reusedSocket }),
      );
    });
    req.on("error", reject);
  });
}

/** SSE through the data plane: the events' data, and whether the stream ended cleanly. */
function sse(dataUrl: string, id: string, n: number, interval: number) {
  const events: string[] = [];
  let first: () => void;
  const started = new Promise<void>((r) => {
    first = r;
  });
  const done = new Promise<{ events: string[]; complete: boolean }>((resolve, reject) => {
    const req = get(
      `${dataUrl}/sse?n=${n}&interval=${interval}`,
      { headers: { "x-session-id": id }, agent: false },
      (res) => {
        let buffer = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          buffer += chunk;
          for (let at = buffer.indexOf("\n\n"); at >= 0; at = buffer.indexOf("\n\n")) {
            events.push(buffer.slice(0, at).replace(/^data: /, ""));
            buffer = buffer.slice(at + 2);
            first();
          }
        });
        res.on("end", () => resolve({ events, complete: res.complete }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
  });
  return { started, done };
}

/** A WebSocket through the data plane sending a numbered message every 50 ms. */
async function echoing(dataUrl: string, id: string) {
  const ws = new WebSocket(`${dataUrl.replace("http", "ws")}/ws`, {
    headers: { "x-session-id": id },
  });
  const received: string[] = [];
  const sentAt = new Map<string, number>();
  let longestMs = 0;
  let hello: () => void;
  const ready = new Promise<void>((r) => {
    hello = r;
  });
  ws.on("message", (data) => {
    const text = data.toString();
    if (text.startsWith("hello")) return hello();
    received.push(text);
    longestMs = Math.max(longestMs, Date.now() - (sentAt.get(text) ?? Date.now()));
  });
  await ready;
  let seq = 0;
  const timer = setInterval(() => {
    const text = `m${++seq}`;
    sentAt.set(text, Date.now());
    ws.send(text);
  }, 50);
  return {
    async stop() {
      clearInterval(timer);
      const last = `m${seq}`;
      const deadline = Date.now() + 10_000;
      while (!received.includes(last) && Date.now() < deadline) await sleep(20);
      ws.close();
      return { sent: seq, received, longestMs };
    },
  };
}

describe("herd restart", () => {
  it("keeps every worker, the SSE stream, the WebSocket, the hold and the watcher's revisions", async () => {
    const { daemon, tag } = await daemonWithCleanup();
    const { controlUrl, dataUrl } = daemon;
    const herd = createHerdClient({ baseUrl: controlUrl });
    const before = await herd.stats();

    // A watcher of every event (connection events too: each revision is one it must see) that
    // resumes from the last revision it saw whenever its stream ends.
    const revisions: bigint[] = [];
    const watching = new AbortController();
    const watcher = (async () => {
      while (!watching.signal.aborted) {
        try {
          for await (const e of herd.watch({
            sinceRevision: revisions.at(-1) ?? 0n,
            connectionEvents: true,
            signal: watching.signal,
          })) {
            revisions.push(e.revision);
          }
        } catch {
          await sleep(50);
        }
      }
    })();

    const held = await herd.hold("w", { sessionId: "held" });
    while (revisions.length === 0) await sleep(20);
    const pids = {
      sse: await whoami(dataUrl, "sse"),
      ws: await whoami(dataUrl, "ws"),
      held: await whoami(dataUrl, "held"),
    };
    // A keep-alive connection open at the hand-over stays with the old process, which serves
    // its next requests to the same worker.
    const keepAlive = new Agent({ keepAlive: true, maxSockets: 1 });
    expect((await whoamiOn(keepAlive, dataUrl, "held")).pid).toBe(pids.held);
    const stream = sse(dataUrl, "sse", 60, 50);
    await stream.started;
    const ws = await echoing(dataUrl, "ws");
    await sleep(300);

    const r = await restart(controlUrl);
    expect(r.stderr).toBe("");
    expect(r.exit.code).toBe(0);
    const result = JSON.parse(r.stdout) as { pid: number; previousPid: number; sessions: number };
    expect(result.previousPid).toBe(daemon.pid);
    expect(result.pid).not.toBe(daemon.pid);
    expect(result.sessions).toBe(3);

    expect(await whoamiOn(keepAlive, dataUrl, "held")).toEqual({ pid: pids.held, reused: true });
    keepAlive.destroy();
    // New connections reach the same workers through the new process.
    expect(await whoami(dataUrl, "sse")).toBe(pids.sse);
    expect(await whoami(dataUrl, "held")).toBe(pids.held);
    expect(await whoami(dataUrl, "ws")).toBe(pids.ws);
    expect(Object.values(pids).every(pidAlive)).toBe(true);
    // A new session is served by the new process.
    expect(await whoami(dataUrl, "fresh")).toBeGreaterThan(0);

    const streamed = await stream.done.catch((err: Error) => {
      // Both processes log to the pipes the test started the old one with.
      throw new Error(`the SSE stream: ${err.message}; the daemons said:\n${daemon.stdout()}`);
    });
    expect(streamed.complete).toBe(true);
    expect(streamed.events).toEqual(Array.from({ length: 60 }, (_, i) => String(i)));

    await sleep(300);
    const echoed = await ws.stop();
    expect(echoed.received).toEqual(Array.from({ length: echoed.sent }, (_, i) => `m${i + 1}`));

    // The old process leaves once its connections closed, with a clean exit (its output pipes
    // stay open: the new process inherited them).
    const left = Date.now() + 30_000;
    while (daemon.child.exitCode === null && daemon.child.signalCode === null && Date.now() < left)
      await sleep(50);
    expect({ code: daemon.child.exitCode, signal: daemon.child.signalCode }).toEqual({
      code: 0,
      signal: null,
    });
    expect(daemonPids(tag)).toEqual([result.pid]);

    // The hold re-attached to the new process, and the session is still its own.
    expect(held.signal.aborted).toBe(false);
    const sessions = await herd.sessions();
    expect(sessions.find((s) => s.sessionId === "held")?.workerPid).toBe(pids.held);
    expect(held.reattaches).toBeGreaterThanOrEqual(1);

    // Revisions go on: one by one, across the restart, under the same instance_id.
    const after = await herd.stats();
    expect(after.instanceId).toBe(before.instanceId);
    // The release's event reaches the watcher, resumed at the new process.
    const last = revisions.at(-1);
    await held.release();
    const deadline = Date.now() + 10_000;
    while (revisions.at(-1) === last && Date.now() < deadline) await sleep(20);
    watching.abort();
    await watcher;
    expect(revisions.length).toBeGreaterThan(3);
    for (let i = 1; i < revisions.length; i++) {
      expect({ at: i, revision: revisions[i] }).toEqual({
        at: i,
        revision: revisions[i - 1]! + 1n,
      });
    }
  }, 120_000);

  it("refuses a broken config on disk, says where, and changes nothing", async () => {
    const { daemon, tag } = await daemonWithCleanup();
    const { controlUrl, dataUrl } = daemon;
    const pid = await whoami(dataUrl, "kept");
    writeFileSync(daemon.configFile, 'workers:\n  w:\n    cmd: ["true"]\n    min: lots\n');

    const r = await restart(controlUrl);
    expect(r.exit.code).toBe(1);
    expect(r.stderr).toMatch(/restart refused: \S+:4:\d+: workers\.w\.min/);
    // The same process serves, the same session on the same worker; no other herd runs.
    expect(daemonPids(tag)).toEqual([daemon.pid]);
    expect(await whoami(dataUrl, "kept")).toBe(pid);
    expect(await whoami(dataUrl, "another")).toBeGreaterThan(0);
  }, 120_000);
});
