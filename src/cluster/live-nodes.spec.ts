import { describe, expect, it } from "vitest";
import { CLOCK_SKEW_MS, LiveNodes } from "./live-nodes.ts";
import type { NodeCapacity } from "./placement.ts";
import { RecordKeys } from "./signed-record.ts";

const keys = new RecordKeys("the-cluster-secret-0123");

function record(over: Partial<NodeCapacity> = {}): NodeCapacity {
  return {
    node: "node-b",
    data: "10.0.0.2:8080",
    control: "10.0.0.2:7070",
    pools: { w: { free: 1, queued: 0, max: 1 } },
    stats: [],
    renewedAt: Date.now(),
    leaseMs: 5_000,
    ...over,
  };
}

describe("LiveNodes", () => {
  it("keeps genuine fresh records with host:port addresses, drops everything else", () => {
    const nodes = new LiveNodes(keys, async () => []);
    const now = Date.now();
    const valid = nodes.verify(
      [
        nodes.sign(record()),
        nodes.sign(record({ node: "v6", data: "[::1]:8080", control: "[::1]:7070" })),
        JSON.stringify(record({ node: "unsigned" })),
        new LiveNodes(new RecordKeys("another-secret-xxxxxx"), async () => []).sign(
          record({ node: "other-secret" }),
        ),
        nodes.sign(record({ node: "unix", data: "unix:/run/herd/relay/http.sock" })),
        nodes.sign(record({ node: "path", control: "10.0.0.2:7070/x" })),
        nodes.sign(record({ node: "stale", renewedAt: now - 5_000 - CLOCK_SKEW_MS - 1 })),
        nodes.sign(record()).replace("10.0.0.2:8080", "10.6.6.6:8080"),
        "garbage",
      ],
      now,
    );
    expect(valid.map((r) => r.node)).toEqual(["node-b", "v6"]);
  });

  it("resolves a node it has not observed yet by reading Redis once more", async () => {
    let reads = 0;
    const nodes: LiveNodes = new LiveNodes(keys, async () => {
      reads++;
      return [nodes.sign(record({ node: "late" }))];
    });
    nodes.observe([]);
    expect(nodes.get("late")).toBeUndefined();
    expect((await nodes.resolve("late"))?.data).toBe("10.0.0.2:8080");
    expect(await nodes.resolve("nobody")).toBeUndefined();
    expect(reads).toBe(2);
  });
});
