import { mkdtempSync, rmSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ConnectionGate, connectionLimits } from "./connection-gate.ts";

describe("connectionLimits", () => {
  it("derives the cap when unset, and half of it per client, none when the plane has none", () => {
    expect(connectionLimits(undefined, undefined, 300)).toEqual({ max: 300, perClient: 150 });
    expect(connectionLimits(10, undefined, 300)).toEqual({ max: 10, perClient: 5 });
    expect(connectionLimits(1, undefined, 300)).toEqual({ max: 1, perClient: 1 });
    expect(connectionLimits(10, 3, 300)).toEqual({ max: 10, perClient: 3 });
    // max_connections: 0 means no cap: one client must not then be held to one connection.
    expect(connectionLimits(0, undefined, 300)).toEqual({ max: 0, perClient: 0 });
  });
});

describe("ConnectionGate", () => {
  const cleanup: (() => void)[] = [];
  afterEach(() => {
    for (const f of cleanup.splice(0)) f();
  });

  /** `n` real client connections to a real server; the server's sockets, in order. */
  async function accepted(listen: (s: Server) => void, dial: () => Socket, n: number) {
    const sockets: Socket[] = [];
    const server = createServer((s) => sockets.push(s));
    cleanup.push(() => server.close());
    await new Promise<void>((resolve) => {
      server.once("listening", () => resolve());
      listen(server);
    });
    for (let i = 0; i < n; i++) {
      const client = dial();
      cleanup.push(() => client.destroy());
      await new Promise((resolve) => client.once("connect", resolve));
    }
    while (sockets.length < n) await new Promise((r) => setTimeout(r, 5));
    cleanup.push(() => {
      for (const s of sockets) s.destroy();
    });
    return sockets;
  }

  it("refuses a TCP client address past its cap, with a reason that names it", async () => {
    let port = 0;
    const sockets = await accepted(
      (s) => s.listen(0, "127.0.0.1", () => (port = (s.address() as { port: number }).port)),
      () => connect(port, "127.0.0.1"),
      3,
    );
    const gate = new ConnectionGate({ max: 10, perClient: 2 });
    expect(sockets.map((s) => gate.admit(s).ok)).toEqual([true, true, false]);
    expect(gate.admit(sockets[2]!)).toMatchObject({ reason: expect.stringContaining("127.0.0.1") });
    expect(gate.open).toBe(2);
  });

  it("counts Unix-socket clients against the global cap only (they have no address)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "herd-gate-"));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, "s.sock");
    const sockets = await accepted(
      (s) => s.listen(path),
      () => connect(path),
      5,
    );
    const gate = new ConnectionGate({ max: 3, perClient: 1 });
    // None is held to the per-address cap of one, and the reserve of a tenth of the cap admits
    // a fourth; the fifth is refused.
    expect(sockets.map((s) => gate.admit(s).ok)).toEqual([true, true, true, true, false]);
  });
});
