import { describe, expect, it } from "vitest";
import { type NodeCapacity, placeAcquire } from "./placement.ts";

function node(
  name: string,
  pools: Record<string, [free: number, queued: number, max: number]>,
  idle: Record<string, number> = {},
) {
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
  for (const [p, workersIdle] of Object.entries(idle)) {
    rec.stats.push({ name: p, workersIdle } as NodeCapacity["stats"][number]);
  }
  return rec;
}

describe("placeAcquire", () => {
  const others = (...nodes: NodeCapacity[]) => nodes;

  it("stays here when this node has room, even when another has more", () => {
    const here = node("a", { w: [1, 0, 4] });
    expect(placeAcquire("w", here, others(node("b", { w: [4, 0, 4] })))?.node).toBe("a");
  });

  it("prefers a warm worker: here when here has one, else the node with the most idle workers and room", () => {
    const cold = node("a", { w: [2, 0, 4] });
    const warm = node("b", { w: [2, 0, 4] }, { w: 1 });
    const warmer = node("c", { w: [1, 0, 4] }, { w: 2 });
    const warmButFull = node("d", { w: [0, 0, 4] }, { w: 3 });
    expect(placeAcquire("w", cold, others(warm, warmer, warmButFull))?.node).toBe("c");
    const warmHere = node("a", { w: [1, 0, 4] }, { w: 1 });
    expect(placeAcquire("w", warmHere, others(warmer))?.node).toBe("a");
    // Nobody warm with room: a free slot here still wins over more room elsewhere.
    expect(placeAcquire("w", cold, others(warmButFull, node("e", { w: [4, 0, 4] })))?.node).toBe(
      "a",
    );
  });

  it("else the node with the most free slots, never one without the pool", () => {
    const here = node("a", { w: [0, 0, 4] });
    const where = placeAcquire(
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

  it("nobody has room: this node's queue, or the least-queued node that runs the pool", () => {
    const full = node("b", { w: [0, 5, 4] });
    const fuller = node("c", { w: [0, 9, 4] });
    expect(placeAcquire("w", node("a", { w: [0, 1, 4] }), others(full))?.node).toBe("a");
    expect(placeAcquire("w", undefined, others(fuller, full))?.node).toBe("b");
  });

  it("no node runs the pool: not_found", () => {
    expect(() => placeAcquire("w", undefined, others(node("b", { x: [1, 0, 1] })))).toThrow(
      /no node of the cluster runs it/,
    );
  });

  it("a draining node takes no new session: not here, not queued there, never another draining node", () => {
    const draining = (n: NodeCapacity) => ({ ...n, draining: true });
    const here = draining(node("a", { w: [4, 0, 4] }));
    const idle = draining(node("b", { w: [4, 0, 4] }));
    const full = node("c", { w: [0, 3, 4] });
    // Both a and b have room, but drain: c's queue takes it.
    expect(placeAcquire("w", here, others(here, idle, full))?.node).toBe("c");
    expect(placeAcquire("w", node("d", { w: [0, 0, 1] }), others(idle))?.node).toBe("d");
    expect(() => placeAcquire("w", here, others(here, idle))).toThrow(/is draining/);
    expect(() => placeAcquire("w", here, [])).toThrow(/is draining/);
  });
});
