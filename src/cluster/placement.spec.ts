import { describe, expect, it } from "vitest";
import { type NodeCapacity, placeAcquire } from "./placement.ts";

function node(name: string, pools: Record<string, [free: number, queued: number, max: number]>) {
  const rec: NodeCapacity = {
    node: name,
    data: `${name}:8080`,
    control: `${name}:7070`,
    pools: {},
    stats: [],
    renewedAt: 0,
    leaseMs: 5000,
  };
  for (const [p, [free, queued, max]] of Object.entries(pools))
    rec.pools[p] = { free, queued, max };
  return rec;
}

describe("placeAcquire", () => {
  const others =
    (...nodes: NodeCapacity[]) =>
    async () =>
      nodes;

  it("stays here when this node has room, without asking for the others", async () => {
    const here = node("a", { w: [1, 0, 4] });
    const where = await placeAcquire("w", here, () => {
      throw new Error("not asked");
    });
    expect(where?.node).toBe("a");
  });

  it("else the node with the most free slots, never one without the pool", async () => {
    const here = node("a", { w: [0, 0, 4] });
    const where = await placeAcquire(
      "w",
      here,
      others(
        node("a", { w: [3, 0, 4] }),
        node("b", { w: [1, 0, 4] }),
        node("c", { w: [2, 0, 4] }),
        node("d", { x: [9, 0, 9] }),
      ),
    );
    expect(where?.node).toBe("c"); // a's own (stale) record is ignored
  });

  it("nobody has room: this node's queue, or the least-queued node that runs the pool", async () => {
    const full = node("b", { w: [0, 5, 4] });
    const fuller = node("c", { w: [0, 9, 4] });
    expect((await placeAcquire("w", node("a", { w: [0, 1, 4] }), others(full)))?.node).toBe("a");
    expect((await placeAcquire("w", undefined, others(fuller, full)))?.node).toBe("b");
  });

  it("no node runs the pool: not_found", async () => {
    await expect(placeAcquire("w", undefined, others(node("b", { x: [1, 0, 1] })))).rejects.toThrow(
      /no node of the cluster runs it/,
    );
  });
});
