import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type StubHerd, startStubHerd } from "../test/stub-herd.ts";
import { startTcpRelay, type TcpRelay } from "../test/tcp-relay.ts";
import { createHerdClient } from "./client.ts";
import { Code, HerdClientError } from "./index.ts";

// Wide enough that a loaded CI machine stalling this process (stub and client alike) for a few
// hundred milliseconds cannot end the hold.
const graceMs = 1_000;
let stub: StubHerd;
beforeAll(async () => {
  stub = await startStubHerd({ heartbeatGraceMs: graceMs, heartbeatIntervalMs: 100 });
});
afterAll(() => stub.close());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const aborted = (signal: AbortSignal) =>
  new Promise<unknown>((resolve) => {
    if (signal.aborted) resolve(signal.reason);
    signal.addEventListener("abort", () => resolve(signal.reason), { once: true });
  });
async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe("HerdClient.hold", () => {
  it("keeps the session past many graces by renewing, and release ends it", async () => {
    const herd = createHerdClient({ baseUrl: stub.url });
    const held = await herd.hold("default");
    expect(held.heartbeatGraceMs).toBe(graceMs);
    expect(held.holdId).not.toBe("");
    await sleep(graceMs * 3);
    expect(held.signal.aborted).toBe(false);
    expect(stub.sessionIds()).toContain(held.id);
    await held.release();
    const reason = await aborted(held.signal);
    expect((reason as HerdClientError).code).toBe(Code.Canceled);
    expect(stub.sessionIds()).not.toContain(held.id);
  });

  it("fires its signal when the daemon ends the session", async () => {
    const herd = createHerdClient({ baseUrl: stub.url });
    const held = await herd.hold("default");
    stub.loseSession(held.id, "exit code 1");
    const reason = await aborted(held.signal);
    expect(reason).toBeInstanceOf(HerdClientError);
    expect((reason as HerdClientError).code).not.toBe(Code.Canceled);
  });

  it("fires its signal when another client releases the session", async () => {
    const herd = createHerdClient({ baseUrl: stub.url });
    const held = await herd.hold("default");
    await createHerdClient({ baseUrl: stub.url }).release(held.id);
    await aborted(held.signal);
  });

  it("ends the session when the caller's signal aborts (the stream closes)", async () => {
    const herd = createHerdClient({ baseUrl: stub.url });
    const stop = new AbortController();
    const held = await herd.hold("default", { signal: stop.signal });
    stop.abort();
    await aborted(held.signal);
    await until(() => !stub.sessionIds().includes(held.id), "the session to end");
  });

  it("rejects with a typed error when the hold cannot start", async () => {
    const herd = createHerdClient({ baseUrl: stub.url });
    const err = await herd.hold("no-such-pool").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HerdClientError);
    expect((err as HerdClientError).code).toBe(Code.NotFound);
  });

  it("ends the session when the holding process is SIGKILLed", async () => {
    const child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        new URL("../test/hold-child.ts", import.meta.url).pathname,
        stub.url,
        "default",
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    try {
      const lines = createInterface({ input: child.stdout! });
      const id = await new Promise<string>((resolve, reject) => {
        lines.on("line", (l) => l.startsWith("HELD ") && resolve(l.slice(5)));
        child.once("exit", (code) => reject(new Error(`hold-child exited early (${code})`)));
      });
      expect(stub.sessionIds()).toContain(id);
      child.kill("SIGKILL");
      await until(() => !stub.sessionIds().includes(id), "the killed holder's session to end");
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    }
  });
});

describe("HerdClient.hold over a connection that drops", () => {
  // A stub with the daemon's reconnect window, behind a relay the tests cut.
  let windowed: StubHerd;
  let relay: TcpRelay;
  beforeAll(async () => {
    windowed = await startStubHerd({
      heartbeatGraceMs: graceMs,
      heartbeatIntervalMs: 100,
      disconnectGraceMs: 3 * graceMs,
    });
    relay = await startTcpRelay(windowed.url);
  });
  afterAll(async () => {
    await relay.close();
    await windowed.close();
  });

  it("re-attaches after a cut: same session object and worker, a new hold that renews", async () => {
    const held = await createHerdClient({ baseUrl: relay.url }).hold("default");
    const { id, workerId, token, holdId } = held;
    relay.cut();
    await until(() => held.reattaches === 1, "the hold to re-attach");
    expect(held.signal.aborted).toBe(false);
    expect([held.id, held.workerId, held.token]).toEqual([id, workerId, token]);
    expect(held.holdId).not.toBe(holdId);
    expect(windowed.holdsOpened(id)).toBe(2);
    // Renewals now go to the new hold: it outlives several graces.
    await sleep(graceMs * 3);
    expect(held.signal.aborted).toBe(false);
    expect(windowed.sessionIds()).toContain(id);
    await held.release();
    expect(windowed.sessionIds()).not.toContain(id);
  });

  it("keeps retrying while the daemon is unreachable for less than a grace", async () => {
    const held = await createHerdClient({ baseUrl: relay.url }).hold("default");
    relay.down = true;
    relay.cut();
    await sleep(graceMs / 3);
    relay.down = false;
    await until(() => held.reattaches === 1, "the hold to re-attach");
    expect(held.signal.aborted).toBe(false);
    await held.release();
  });

  it("reports the hold lost once a grace passes without reaching the daemon", async () => {
    const held = await createHerdClient({ baseUrl: relay.url }).hold("default");
    relay.down = true;
    try {
      const cutAt = Date.now();
      relay.cut();
      const reason = (await aborted(held.signal)) as HerdClientError;
      expect(reason).toBeInstanceOf(HerdClientError);
      expect(reason.message).toMatch(/not re-attached within/);
      expect(Date.now() - cutAt).toBeGreaterThanOrEqual(graceMs / 2);
      expect(held.reattaches).toBe(0);
    } finally {
      relay.down = false;
    }
    // The daemon side: its window passes and the session ends.
    await until(() => !windowed.sessionIds().includes(held.id), "the window to end the session");
  });

  it("ends at once when the session is gone by the time it re-attaches (NOT_FOUND)", async () => {
    const held = await createHerdClient({ baseUrl: relay.url }).hold("default");
    windowed.loseSession(held.id, "exit code 1");
    relay.cut();
    const reason = (await aborted(held.signal)) as HerdClientError;
    expect([Code.NotFound, Code.FailedPrecondition]).toContain(reason.code);
    await sleep(200);
    expect(windowed.sessionIds()).not.toContain(held.id);
  });

  it("re-attaching never creates a session: with no window the hold ends NOT_FOUND", async () => {
    const direct = await startTcpRelay(stub.url);
    try {
      const held = await createHerdClient({ baseUrl: direct.url }).hold("default");
      direct.cut();
      const reason = (await aborted(held.signal)) as HerdClientError;
      expect(reason.code).toBe(Code.NotFound);
      await sleep(200);
      expect(stub.sessionIds()).not.toContain(held.id);
    } finally {
      await direct.close();
    }
  });
});
