// The bundled demo, run the way `npm start` runs it (bin/herd serve on examples/demo/herd.yaml,
// with both planes moved to free ports), walked through the README's affinity story.
import { describe, expect, it } from "vitest";
import WebSocket from "ws";
import { daemonPerTest } from "../../test/helpers/daemon-per-test.ts";
import { pidsWithTag } from "../../test/helpers/processes.ts";

const CONFIG = new URL("./herd.yaml", import.meta.url).pathname;

const ctx = daemonPerTest(CONFIG);

async function get(path: string, session: string, init: RequestInit = {}) {
  const res = await fetch(`${ctx.daemon.dataUrl}${path}`, {
    ...init,
    headers: { "X-Session-ID": session, ...init.headers },
  });
  expect(res.status, `${path}: ${res.status}`).toBeLessThan(300);
  return res;
}
const counter = async (session: string) =>
  (await (await get("/counter", session)).json()) as { worker: string; counter: number };

describe("examples/demo", () => {
  it("pins a session to one process: same ID, same worker and a growing counter", async () => {
    const a1 = await counter("alice");
    const a2 = await counter("alice");
    const b1 = await counter("bob");
    expect(a2).toEqual({ worker: a1.worker, counter: a1.counter + 1 });
    expect(b1.worker).not.toBe(a1.worker);
    expect(b1.counter).toBe(1);
    // The workers carry the leak tag, so the afterEach leak check really covers them.
    const sessions = await (
      await fetch(`${ctx.daemon.controlUrl}/herd.v1.HerdService/ListSessions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: "{}",
      })
    ).json();
    const workerPids = (sessions as { sessions: { workerPid: number }[] }).sessions.map(
      (s) => s.workerPid,
    );
    expect(workerPids).toHaveLength(2);
    expect(pidsWithTag(ctx.leak.tag)).toEqual(
      expect.arrayContaining([ctx.daemon.pid, ...workerPids]),
    );

    await get("/notes", "alice", { method: "POST", body: "buy milk" });
    const notes = (await (await get("/notes", "alice")).json()) as { notes: string[] };
    expect(notes.notes).toEqual(["buy milk"]);
    const bobs = (await (await get("/notes", "bob")).json()) as { notes: string[] };
    expect(bobs.notes).toEqual([]);

    const home = await (await get("/", "alice")).text();
    expect(home).toContain(`process ${a1.worker}`);
    expect(home).toContain("Counter: 2.");
  });

  it("streams SSE tokens and echoes WebSocket messages through the data plane", async () => {
    const { worker } = await counter("carol");
    const sse = await (await get("/stream?interval=5&text=one+two", "carol")).text();
    expect(sse).toContain(`data: {"token":"one","index":0,"worker":"${worker}"}`);
    expect(sse).toContain(`data: {"token":"two","index":1,"worker":"${worker}"}`);
    expect(sse).toContain("event: done");

    const ws = new WebSocket(`${ctx.daemon.dataUrl.replace("http", "ws")}/ws`, {
      headers: { "X-Session-ID": "carol" },
    });
    const messages: string[] = [];
    const next = () =>
      new Promise<string>((resolve, reject) => {
        ws.once("message", (d) => resolve(d.toString()));
        ws.once("error", reject);
      });
    messages.push(await next());
    ws.send("ping");
    messages.push(await next());
    ws.close();
    expect(messages).toEqual([`hello ${worker}`, "ping"]);
  });
});
