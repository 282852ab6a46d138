import { describe, expect, it } from "vitest";
import { PeerAuth } from "./peer-auth.ts";

describe("PeerAuth", () => {
  const a = new PeerAuth("the-cluster-secret-0123", "node-a");
  const b = new PeerAuth("the-cluster-secret-0123", "node-b");

  it("verifies a fresh credential of the same secret and purpose, naming its node", () => {
    expect(b.verify(a.sign("data:s1"), "data:s1")).toBe("node-a");
    expect(b.verify(a.sign("control"), "control")).toBe("node-a");
  });

  it("refuses another purpose, another secret, a stale or malformed credential", () => {
    const now = Date.now();
    expect(b.verify(a.sign("data:s1"), "data:s2")).toBeUndefined();
    expect(
      b.verify(new PeerAuth("another-secret-xxxxxx", "node-a").sign("control"), "control"),
    ).toBeUndefined();
    expect(b.verify(a.sign("control", now - 120_000), "control", now)).toBeUndefined();
    expect(b.verify(a.sign("control", now + 120_000), "control", now)).toBeUndefined();
    for (const bad of ["", "node-a", "node-a.1.x", `node-a.${now}.${"A".repeat(43)}`]) {
      expect(b.verify(bad, "control")).toBeUndefined();
    }
  });

  it("binds the node name: a credential re-labelled with another node fails", () => {
    const [, time, mac] = a.sign("control").split(".");
    expect(b.verify(`node-c.${time}.${mac}`, "control")).toBeUndefined();
  });
});
