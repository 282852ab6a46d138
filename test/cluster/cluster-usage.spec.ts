// Usage in a cluster (issue 21): traffic sent through a node that does not own the session is
// forwarded one hop to the owner and counted once, there, in the session's rx/tx bytes; its
// worker's logs are read on the owner, and the other node says which node that is.

import { afterEach, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { startCluster, type TestCluster } from "./cluster-harness.ts";

const MiB = 2 ** 20;
let cluster: TestCluster | undefined;
afterEach(async () => {
  await cluster?.cleanup();
  cluster = undefined;
});

describe("usage and logs through a non-owner node", () => {
  it("a 10 MiB download and a WebSocket exchange are counted once, on the owner; logs are read there", async () => {
    cluster = await startCluster(["a", "b"].map((n) => ({ node: `node-${n}` })));
    const c = cluster;
    const { session } = await c.client(c.nodes[0]!).acquireSession({ pool: "w", sessionId: "u" });
    const names = ["node-a", "node-b"];
    const ownerIndex = names.indexOf(session!.node);
    expect(ownerIndex).toBeGreaterThanOrEqual(0);
    const other = c.nodes[1 - ownerIndex]!;

    const res = await fetch(`${other.dataUrl}/s/u/download?mb=10`);
    expect(res.status).toBe(200);
    const body = Buffer.from(await res.arrayBuffer());
    expect(body.length).toBe(10 * MiB);

    const ws = new WebSocket(`${other.dataUrl.replace("http", "ws")}/s/u/ws`);
    const echoed = new Promise<void>((resolve, reject) => {
      ws.on("message", (m: Buffer) => {
        if (m.length === MiB) resolve();
      });
      ws.once("error", reject);
    });
    await new Promise((r, j) => {
      ws.once("open", r);
      ws.once("error", j);
    });
    ws.send(Buffer.alloc(MiB, 1));
    await echoed;
    ws.close();
    await new Promise((r) => ws.once("close", r));

    // Its logs are read on its node; the other one says where.
    const logs = c.client(c.nodes[ownerIndex]!).tailSessionLogs({ sessionId: "u" });
    for await (const _ of logs) {
    }
    const elsewhere = c.client(other).tailSessionLogs({ sessionId: "u" });
    await expect(
      (async () => {
        for await (const _ of elsewhere) {
        }
      })(),
    ).rejects.toThrow(`runs on node ${session!.node}: read its logs there`);

    const ended = (await c.client(c.nodes[ownerIndex]!).releaseSession({ sessionId: "u" }))
      .session!;
    const tx = Number(ended.usage?.txBytes);
    const rx = Number(ended.usage?.rxBytes);
    // Once: the download and the echo, plus heads and frame headers; twice would be > 22 MiB.
    expect(tx).toBeGreaterThan(11 * MiB);
    expect(tx).toBeLessThan(11 * MiB + 64 * 1024);
    expect(rx).toBeGreaterThan(MiB);
    expect(rx).toBeLessThan(MiB + 64 * 1024);
  });
});
