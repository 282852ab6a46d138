// Issue 18, attack 8: another tenant's stderr in my error body. With `reuse: true` one worker
// serves tenant A, then tenant B; its stderr tail still holds A's lines when it dies under B.
// Before the fix B's 502 (data plane) and B's HoldSession error (control plane) quoted that tail,
// A's line included. Now a worker's stderr goes to the operator only: WatchSessions' lost event
// (exit.stderrTail) and the log, never into an answer to a client.
import { ConnectError } from "@connectrpc/connect";
import { afterEach, describe, expect, it } from "vitest";
import { type ControlPlane, startControlPlane } from "../../src/server/index.ts";
import { eventually } from "../abuse/raw-client.ts";
import { type Stack, stackTracker, startStack, whoami } from "../dataplane/stack.ts";
import { herdClient } from "../helpers/control-plane-harness.ts";

const { track, stopAll } = stackTracker();
const planes: ControlPlane[] = [];
afterEach(async () => {
  for (const cp of planes.splice(0)) await cp.close();
  await stopAll();
});

const SECRET = `tenant-a-secret-${Math.random().toString(36).slice(2)}`;

/** One reused worker: A writes SECRET on its stderr and is released; B gets the same process. */
async function afterTenantA(): Promise<{ s: Stack; pid: number }> {
  const s = track(await startStack([{ reuse: true, min: 1, max: 1, healthIntervalMs: 0 }]));
  const a = await fetch(`${s.url}/control/stderr?line=${SECRET}`, {
    method: "POST",
    headers: { "X-Session-ID": "tenant-a" },
  });
  expect(a.status).toBe(200);
  const { pid } = (await a.json()) as { pid: number };
  await s.herd.release("tenant-a");
  const b = await whoami(s.url, { headers: { "X-Session-ID": "tenant-b" } });
  expect(b.pid, "tenant B runs on tenant A's reused worker").toBe(pid);
  return { s, pid };
}

function crash(s: Stack): Promise<unknown> {
  return fetch(`${s.url}/control/crash?code=3`, {
    method: "POST",
    headers: { "X-Session-ID": "tenant-b" },
  }).catch(() => undefined);
}

describe("a worker's stderr reaches only the operator", () => {
  it("not tenant B's HoldSession error, while WatchSessions shows it to the operator", async () => {
    const { s } = await afterTenantA();
    const cp = await startControlPlane(s.herd, {
      listen: "127.0.0.1:0",
      dataPlaneUrl: s.url,
    });
    planes.push(cp);
    const client = herdClient("connect-h1", cp.url);
    const events = client.watchSessions({ sessionId: "tenant-b" })[Symbol.asyncIterator]();
    const hold = client.holdSession({ sessionId: "tenant-b" })[Symbol.asyncIterator]();
    expect((await hold.next()).value?.kind.case).toBe("session");

    await crash(s);
    let error: ConnectError | undefined;
    try {
      for (;;) if ((await hold.next()).done) break;
    } catch (err) {
      error = ConnectError.from(err);
    }
    expect(error?.rawMessage).toMatch(/tenant-b was lost: exited with code 3/);
    expect(error?.rawMessage).not.toContain(SECRET);
    expect(JSON.stringify(error?.metadata ?? {})).not.toContain(SECRET);

    for (;;) {
      const { value } = await events.next();
      if (value === undefined) throw new Error("WatchSessions ended without the lost event");
      if (value.exit !== undefined) {
        expect(value.exit?.stderrTail).toContain(SECRET);
        break;
      }
    }
    await events.return?.();
  });

  it("not tenant B's 502 on the data plane", async () => {
    const { s } = await afterTenantA();
    // In flight when the worker dies: answered 502 with why the session ended.
    const forwarded = s.dp.counters.forwarded;
    const pending = fetch(`${s.url}/hang`, { headers: { "X-Session-ID": "tenant-b" } });
    expect(await eventually(() => s.dp.counters.forwarded > forwarded, 15_000)).toBe(true);
    await crash(s);
    const res = await pending;
    const text = await res.text();
    expect(res.status, text).toBe(502);
    expect(text).not.toContain(SECRET);
  });
});
