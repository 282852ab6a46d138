// Slow request bodies and connection floods on the data plane (issue 10, item 1): trickled
// bodies are cut by the body deadline while other sessions are served, a long upload at a
// decent rate is not cut, and open connections are capped globally and per client address
// with a 503 instead of running the daemon out of descriptors.

import { afterEach, describe, expect, it } from "vitest";
import { stackTracker, startStack, whoami } from "../dataplane/stack.ts";
import { closeAll, eventually, type RawConnection, rawConnect } from "./raw-client.ts";

const { track, stopAll } = stackTracker();
afterEach(async () => {
  closeAll();
  await stopAll();
});

function uploadHead(session: string, length: number): string {
  return `POST /upload HTTP/1.1\r\nHost: x\r\nX-Session-ID: ${session}\r\nContent-Length: ${length}\r\n\r\n`;
}

describe("slow request bodies", () => {
  it("cuts 300 trickling bodies by the body deadline while another session answers within 2 s", async () => {
    const s = track(
      await startStack([{}], {
        bodyTimeoutMs: 1500,
        bodyMinRate: 500,
        maxConnections: 2000,
        maxConnectionsPerClient: 2000,
      }),
    );
    const { pid } = await whoami(s.url, { headers: { "X-Session-ID": "steady" } });
    await whoami(s.url, { headers: { "X-Session-ID": "trickle" } });

    const trickles: RawConnection[] = [];
    for (let i = 0; i < 300; i++) {
      const c = await rawConnect(s.dp.port);
      c.write(uploadHead("trickle", 1_000_000));
      trickles.push(c);
    }
    const drip = setInterval(() => {
      for (const c of trickles) c.write("x");
    }, 1000);
    try {
      for (let i = 0; i < 3; i++) {
        const started = Date.now();
        expect((await whoami(s.url, { headers: { "X-Session-ID": "steady" } })).pid).toBe(pid);
        expect(Date.now() - started).toBeLessThan(2000);
      }
      const allCut = await eventually(() => trickles.every((c) => c.socket.destroyed), 15_000);
      expect(allCut, "every trickling connection is closed by the body deadline").toBe(true);
    } finally {
      clearInterval(drip);
    }
    const answered = trickles.filter((c) => c.text.startsWith("HTTP/1.1 408 "));
    expect(answered.length).toBeGreaterThan(0);
    expect(answered[0]!.text).toContain("request body too slow");
    expect((await whoami(s.url, { headers: { "X-Session-ID": "steady" } })).pid).toBe(pid);
  });

  it("lets a long upload through that arrives faster than the minimum rate", async () => {
    const s = track(await startStack([{}], { bodyTimeoutMs: 500, bodyMinRate: 1000 }));
    const c = await rawConnect(s.dp.port);
    const chunk = "y".repeat(1000);
    const chunks = 12; // 12 kB at ~4 kB/s: three times longer than the bare body timeout
    c.write(uploadHead("uploader", chunk.length * chunks));
    for (let i = 0; i < chunks; i++) {
      c.write(chunk);
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(await eventually(() => c.text.includes("sha256"), 15_000)).toBe(true);
    expect(c.text).toMatch(/^HTTP\/1\.1 200 /);
    expect(c.text).toContain(`"bytes":${chunk.length * chunks}`);
  });
});

describe("connection caps", () => {
  it("answers 503 with Retry-After past the global cap, and serves again once below it", async () => {
    const s = track(await startStack([{}], { maxConnections: 5, maxConnectionsPerClient: 5 }));
    const idle: RawConnection[] = [];
    for (let i = 0; i < 5; i++) idle.push(await rawConnect(s.dp.port));
    expect(await eventually(() => s.dp.openConnections === 5)).toBe(true);
    const refused = await rawConnect(s.dp.port);
    refused.write("GET /whoami HTTP/1.1\r\nHost: x\r\nX-Session-ID: late\r\n\r\n");
    await refused.closed;
    expect(refused.text).toMatch(/^HTTP\/1\.1 503 /);
    expect(refused.text).toContain("Retry-After: 1");
    expect(refused.text).toContain('"code":"unavailable"');
    expect(refused.text).toContain("limit 5");
    expect(s.herd.sessions()).toEqual([]);
    for (const c of idle) c.socket.destroy();
    expect(await eventually(() => s.dp.openConnections === 0)).toBe(true);
    await whoami(s.url, { headers: { "X-Session-ID": "late" } });
  });

  it("when full, still admits an address holding no connection (into a reserve of a tenth)", async () => {
    const s = track(await startStack([{}], { maxConnections: 10, maxConnectionsPerClient: 10 }));
    for (let i = 0; i < 10; i++) await rawConnect(s.dp.port, { localAddress: "127.0.0.3" });
    expect(await eventually(() => s.dp.openConnections === 10)).toBe(true);
    // A newcomer gets one of the reserve; the flooding address gets nothing more.
    const flooder = await rawConnect(s.dp.port, { localAddress: "127.0.0.3" });
    await flooder.closed;
    expect(flooder.text).toMatch(/^HTTP\/1\.1 503 /);
    await whoami(s.url, { headers: { "X-Session-ID": "newcomer", Connection: "close" } });
  });

  it("caps nothing per address when max_connections is 0 (no cap)", async () => {
    const s = track(await startStack([{}], { maxConnections: 0 }));
    const held = [];
    for (let i = 0; i < 3; i++)
      held.push(await rawConnect(s.dp.port, { localAddress: "127.0.0.2" }));
    const more = await rawConnect(s.dp.port, { localAddress: "127.0.0.2" });
    more.write("GET /whoami HTTP/1.1\r\nHost: x\r\nX-Session-ID: uncapped\r\n\r\n");
    expect(await eventually(() => /^HTTP\/1\.1 200 /.test(more.text), 10_000)).toBe(true);
    expect(held.some((c) => c.socket.destroyed)).toBe(false);
  });

  it("caps connections per client address without refusing other addresses", async () => {
    const s = track(await startStack([{}], { maxConnections: 100, maxConnectionsPerClient: 3 }));
    for (let i = 0; i < 3; i++) await rawConnect(s.dp.port, { localAddress: "127.0.0.2" });
    const refused = await rawConnect(s.dp.port, { localAddress: "127.0.0.2" });
    await refused.closed;
    expect(refused.text).toMatch(/^HTTP\/1\.1 503 /);
    expect(refused.text).toContain("from 127.0.0.2");
    await whoami(s.url, { headers: { "X-Session-ID": "other-address" } });
  });
});
