// WebSocket (Upgrade) requests whose clients leave, and Upgrade requests with a body (issue
// 10, item 4): on a full pool, upgrades for new ids whose clients then leave are removed from
// the queue at once and never become sessions; an Upgrade with a body reaches a worker that
// declines the upgrade, which answers after reading it.

import { afterEach, describe, expect, it } from "vitest";
import { stackTracker, startStack, whoami } from "../dataplane/stack.ts";
import { closeAll, eventually, type RawConnection, rawConnect } from "./raw-client.ts";

const { track, stopAll } = stackTracker();
afterEach(async () => {
  closeAll();
  await stopAll();
});

function upgradeHead(session: string, path = "/ws", extra = ""): string {
  return (
    `GET ${path} HTTP/1.1\r\nHost: x\r\nX-Session-ID: ${session}\r\nConnection: Upgrade\r\n` +
    `Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n${extra}\r\n`
  );
}

describe("abandoned WebSocket upgrades", () => {
  it("leave the queue as soon as their clients leave, and never become sessions", async () => {
    const s = track(
      await startStack([{ max: 1, queueLimit: 100, acquireTimeoutMs: 60_000, idleTtlMs: 60_000 }]),
    );
    await whoami(s.url, { headers: { "X-Session-ID": "resident" } });
    const queued = () => s.herd.stats().pools[0]!.queued;
    const ghosts: RawConnection[] = [];
    for (let i = 0; i < 20; i++) {
      const c = await rawConnect(s.dp.port);
      c.write(upgradeHead(`ghost-${i}`));
      ghosts.push(c);
    }
    expect(await eventually(() => queued() === 20)).toBe(true);
    // The clients give up: FIN, as a browser tab that is closed does.
    for (const c of ghosts) c.socket.end();
    expect(await eventually(() => queued() === 0, 10_000), "the queue empties at once").toBe(true);
    await s.herd.release("resident");
    // The freed worker is not handed to any ghost.
    const live = await rawConnect(s.dp.port);
    live.write(upgradeHead("real"));
    expect(await eventually(() => live.text.startsWith("HTTP/1.1 101 "))).toBe(true);
    expect(s.herd.sessions().map((x) => x.id)).toEqual(["real"]);
  });
});

describe("Upgrade requests with a body", () => {
  it("forward the body to a worker that declines the upgrade, and relay its answer", async () => {
    const s = track(await startStack([{ dataTimeoutMs: 0 }]));
    const c = await rawConnect(s.dp.port);
    c.write(upgradeHead("declined", "/echo", "Content-Length: 11\r\n"));
    c.write("hello");
    await new Promise((r) => setTimeout(r, 100));
    c.write(" world");
    expect(await eventually(() => c.socket.destroyed, 10_000), "both sides are answered").toBe(
      true,
    );
    expect(c.text).toMatch(/^HTTP\/1\.1 200 /);
    expect(c.text).toContain('"upgrade":"declined","bodyLength":11');
  });

  it("refuses a chunked Upgrade request body with 400", async () => {
    const s = track(await startStack());
    const c = await rawConnect(s.dp.port);
    c.write(upgradeHead("chunky", "/echo", "Transfer-Encoding: chunked\r\n"));
    c.write("5\r\nhello\r\n0\r\n\r\n");
    await c.closed;
    expect(c.text).toMatch(/^HTTP\/1\.1 400 /);
    expect(c.text).toContain("chunked");
    expect(s.herd.sessions()).toEqual([]);
  });
});
