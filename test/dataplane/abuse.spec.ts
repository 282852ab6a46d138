// Abuse of the data plane: oversized heads, slowloris, floods of new session ids. Each must
// get a clear answer while an established session keeps being served.
import { connect } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { stackTracker, startStack, whoami } from "./stack.ts";

const { track, stopAll } = stackTracker();
afterEach(stopAll);

/** Sends raw bytes, resolves with everything the server sent until it closed. */
function rawExchange(
  port: number,
  send: (write: (s: string) => void) => void,
): Promise<{ text: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const start = Date.now();
    const socket = connect(port, "127.0.0.1");
    let text = "";
    socket.setEncoding("utf8");
    socket.on("data", (d) => (text += d));
    socket.on("error", reject);
    socket.on("close", () => resolve({ text, ms: Date.now() - start }));
    socket.on("connect", () => send((s) => socket.writable && socket.write(s)));
  });
}

describe("data plane abuse", () => {
  it("answers 431 to an oversized request head", async () => {
    const s = track(await startStack([{}], { maxHeaderSize: 8 * 1024 }));
    const res = await fetch(`${s.url}/whoami`, {
      headers: { "X-Session-ID": "big", "X-Padding": "x".repeat(16 * 1024) },
    });
    expect(res.status).toBe(431);
    expect(await res.json()).toMatchObject({
      code: "invalid_argument",
      message: expect.stringContaining("8192"),
    });
    expect(s.herd.sessions()).toEqual([]);
    await whoami(s.url, { headers: { "X-Session-ID": "fine" } });
  });

  it("closes a slowloris connection after the header timeout, serving others meanwhile", async () => {
    const s = track(await startStack([{}], { headerTimeoutMs: 600 }));
    const { pid } = await whoami(s.url, { headers: { "X-Session-ID": "steady" } });
    let drip: NodeJS.Timeout | undefined;
    const slow = rawExchange(s.dp.port, (write) => {
      write("GET /whoami HTTP/1.1\r\nHost: x\r\n");
      drip = setInterval(() => write("X-Drip: 1\r\n"), 100);
    });
    for (let i = 0; i < 5; i++)
      expect((await whoami(s.url, { headers: { "X-Session-ID": "steady" } })).pid).toBe(pid);
    const { text, ms } = await slow;
    clearInterval(drip);
    expect(text).toMatch(/^HTTP\/1\.1 408 /);
    expect(text).toContain('"code":"deadline_exceeded"');
    expect(ms).toBeLessThan(5000);
  });

  it("bounds a flood of new session ids by the pool's queue limit", async () => {
    // Both workers started before the flood (min 2): the one flood request served takes the
    // idle one, so no cold start has to fit in the 1.5 s the queued ones wait in vain.
    const s = track(await startStack([{ min: 2, max: 2, queueLimit: 3, acquireTimeoutMs: 1500 }]));
    const { pid } = await whoami(s.url, { headers: { "X-Session-ID": "resident" } });
    const flood = Array.from({ length: 20 }, (_, i) =>
      fetch(`${s.url}/whoami`, { headers: { "X-Session-ID": `flood-${i}` } }),
    );
    // The resident session is served while the flood is queued or refused.
    expect((await whoami(s.url, { headers: { "X-Session-ID": "resident" } })).pid).toBe(pid);
    const answers = await Promise.all(flood);
    const statuses = answers.map((r) => r.status);
    expect(statuses.filter((st) => st === 200).length).toBe(1); // max 2, one taken by resident
    expect(statuses.filter((st) => st === 503).length).toBe(19);
    for (const r of answers.filter((a) => a.status === 503)) {
      expect(r.headers.get("retry-after")).toBe("1");
      const body = (await r.json()) as { code: string; message: string };
      expect(["resource_exhausted", "unavailable"]).toContain(body.code);
      expect(body.message.length).toBeGreaterThan(0);
    }
    expect(s.herd.stats().pools[0]!.workersTotal).toBeLessThanOrEqual(2);
    expect((await whoami(s.url, { headers: { "X-Session-ID": "resident" } })).pid).toBe(pid);
  });

  it("refuses an upload without reading its body, closing the connection", async () => {
    const s = track(await startStack([{}], { tokens: true }));
    await s.herd.acquire("p0", "vault");
    const { text } = await rawExchange(s.dp.port, (write) => {
      // Announces 100 MB, sends 64 KiB: the 401 must come without waiting for the rest.
      write("POST /upload HTTP/1.1\r\nHost: x\r\nX-Session-ID: vault\r\n");
      write(`Content-Length: ${100 * 1024 * 1024}\r\n\r\n${"x".repeat(64 * 1024)}`);
    });
    expect(text).toMatch(/^HTTP\/1\.1 401 /);
    expect(text.toLowerCase()).toContain("connection: close");
  });

  it("answers 400 to a malformed request without touching any session", async () => {
    const s = track(await startStack());
    const { text } = await rawExchange(s.dp.port, (write) => write("NOT HTTP AT ALL\r\n\r\n"));
    expect(text).toMatch(/^HTTP\/1\.1 400 /);
    expect(s.herd.sessions()).toEqual([]);
  });
});
