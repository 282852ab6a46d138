// Idle and pre-auth connections on the control plane (issue 10, item 2): HTTP/2 connections
// that only sent the preface and HTTP/1.1 connections with partial headers are closed by the
// header deadline, open connections are capped, and the long-lived HoldSession and
// WatchSessions streams are not cut by any of it, however quiet they are.

import { connect as connectHttp2 } from "node:http2";
import { afterEach, describe, expect, it } from "vitest";
import {
  type Harness,
  herdClient,
  type Protocol,
  startHarness,
} from "../helpers/control-plane-harness.ts";
import { closeAll, eventually, type RawConnection, rawConnect } from "./raw-client.ts";

const PREFACE = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

let h: Harness | undefined;
afterEach(async () => {
  closeAll();
  await h?.close();
  h = undefined;
});

describe("control plane connection limits", () => {
  it("closes preface-only HTTP/2 and partial-header HTTP/1.1 connections after the header deadline", async () => {
    h = await startHarness([{}], { headerTimeoutMs: 500, idleTimeoutMs: 60_000 });
    const port = h.cp.port;
    const idle: RawConnection[] = [];
    for (let i = 0; i < 20; i++) {
      const h2 = await rawConnect(port);
      h2.write(PREFACE);
      const h1 = await rawConnect(port);
      h1.write("POST /herd.v1.HerdService/GetStats HTTP/1.1\r\nHost: x\r\nContent-Type: appl");
      idle.push(h2, h1);
    }
    expect(await eventually(() => idle.every((c) => c.socket.destroyed), 10_000)).toBe(true);
    const stats = await herdClient("grpc", h.cp.url).getStats({});
    expect(stats.pools.length).toBe(1);
  });

  it("closes an HTTP/2 connection with no call in flight after the idle deadline", async () => {
    h = await startHarness([{}], { headerTimeoutMs: 60_000, idleTimeoutMs: 500 });
    const session = connectHttp2(h.cp.url);
    const closed = new Promise<void>((resolve) => session.once("close", () => resolve()));
    session.on("error", () => {});
    const res = session.request({ ":path": "/healthz" });
    res.resume();
    await new Promise((resolve) => res.once("end", resolve));
    // No call in flight from here on: the server closes the connection on its own.
    let gone = false;
    void closed.then(() => {
      gone = true;
    });
    expect(await eventually(() => gone, 10_000)).toBe(true);
  });

  it("refuses connections past the cap and takes new ones once below it", async () => {
    h = await startHarness([{}], { maxConnections: 4 });
    const held: RawConnection[] = [];
    for (let i = 0; i < 4; i++) held.push(await rawConnect(h.cp.port));
    const over = await rawConnect(h.cp.port);
    expect(await eventually(() => over.socket.destroyed, 5000)).toBe(true);
    expect(over.text).toBe("");
    expect(held.some((c) => c.socket.destroyed)).toBe(false);
    for (const c of held) c.socket.destroy();
    expect(await eventually(() => h!.cp.openConnections === 0)).toBe(true);
    expect((await herdClient("connect-h1", h.cp.url).getStats({})).pools.length).toBe(1);
  });

  it("caps connections per client address, and not another address's", async () => {
    h = await startHarness([{}], { maxConnections: 100, maxConnectionsPerClient: 3 });
    const held: RawConnection[] = [];
    for (let i = 0; i < 3; i++) {
      held.push(await rawConnect(h.cp.port, { localAddress: "127.0.0.2" }));
    }
    const over = await rawConnect(h.cp.port, { localAddress: "127.0.0.2" });
    expect(await eventually(() => over.socket.destroyed, 5000)).toBe(true);
    expect(held.some((c) => c.socket.destroyed)).toBe(false);
    // Another address (the client below, on 127.0.0.1) is served meanwhile.
    expect((await herdClient("connect-h1", h.cp.url).getStats({})).pools.length).toBe(1);
    // Below the cap again, the address is admitted again.
    held[0]!.socket.destroy();
    await eventually(() => h!.cp.openConnections <= 3);
    const again = await rawConnect(h.cp.port, { localAddress: "127.0.0.2" });
    again.write("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    expect(await eventually(() => again.text.startsWith("HTTP/1.1 200"), 5000)).toBe(true);
  });

  for (const protocol of ["grpc", "connect-h1"] as Protocol[]) {
    it(`keeps quiet HoldSession and WatchSessions streams open past both deadlines (${protocol})`, async () => {
      // Deadlines of a second: shorter ones reset the test's own fresh connections (the acquire
      // below) at load 35, before their head was sent.
      h = await startHarness([{ heartbeatGraceMs: 30_000 }], {
        headerTimeoutMs: 1000,
        idleTimeoutMs: 1000,
        heartbeatMs: 3000,
      });
      const c = herdClient(protocol, h.cp.url);
      const stop = new AbortController();
      try {
        const hold = c
          .holdSession({ sessionId: "held" }, { signal: stop.signal })
          [Symbol.asyncIterator]();
        const watch = c.watchSessions({}, { signal: stop.signal })[Symbol.asyncIterator]();
        expect((await hold.next()).value?.kind.case).toBe("session");
        // Two heartbeats 3 s apart: the stream outlived three idle deadlines in between.
        expect((await hold.next()).value?.kind.case).toBe("heartbeat");
        expect((await hold.next()).value?.kind.case).toBe("heartbeat");
        // The watch, quiet all that time, still reports a new session.
        const next = watch.next();
        await c.acquireSession({ sessionId: "later" });
        for (let e = await next; ; e = await watch.next()) {
          expect(e.done).toBe(false);
          if (e.value?.sessionId === "later") break;
        }
      } finally {
        stop.abort();
      }
    });
  }
});
