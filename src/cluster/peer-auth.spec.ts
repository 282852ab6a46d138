import { describe, expect, it } from "vitest";
import { CLOCK_SKEW_MS } from "./live-nodes.ts";
import { PeerAuth } from "./peer-auth.ts";

const SECRET = "the-cluster-secret-0123";
const PATH = "/herd.v1.HerdService/ReleaseSession";
const body = (s: string) => Buffer.from(s);

describe("PeerAuth: control credentials", () => {
  it("a fresh credential for this node, method and body verifies once, naming its node", () => {
    const a = new PeerAuth(SECRET, "node-a");
    const b = new PeerAuth(SECRET, "node-b");
    const c = a.control("node-b", PATH, body("s1"));
    expect(b.verifyControl(c, PATH, body("s1"))).toBe("node-a");
    // The same credential again (a replay): refused.
    expect(b.verifyControl(c, PATH, body("s1"))).toBeUndefined();
  });

  it("refuses it on another node, for another method or body, with another secret", () => {
    const a = new PeerAuth(SECRET, "node-a");
    const b = new PeerAuth(SECRET, "node-b");
    const c = new PeerAuth(SECRET, "node-c");
    expect(
      c.verifyControl(a.control("node-b", PATH, body("s1")), PATH, body("s1")),
    ).toBeUndefined();
    expect(
      b.verifyControl(
        a.control("node-b", PATH, body("s1")),
        "/herd.v1.HerdService/GetStats",
        body("s1"),
      ),
    ).toBeUndefined();
    expect(
      b.verifyControl(a.control("node-b", PATH, body("s1")), PATH, body("s2")),
    ).toBeUndefined();
    const other = new PeerAuth("another-secret-xxxxxx", "node-a");
    expect(
      b.verifyControl(other.control("node-b", PATH, body("")), PATH, body("")),
    ).toBeUndefined();
  });

  it("is valid for ±CLOCK_SKEW_MS only", () => {
    const a = new PeerAuth(SECRET, "node-a");
    const b = new PeerAuth(SECRET, "node-b");
    const now = Date.now();
    const at = (t: number) => a.control("node-b", PATH, body(""), t);
    expect(b.verifyControl(at(now - CLOCK_SKEW_MS - 1), PATH, body(""), now)).toBeUndefined();
    expect(b.verifyControl(at(now + CLOCK_SKEW_MS + 1), PATH, body(""), now)).toBeUndefined();
    expect(b.verifyControl(at(now - CLOCK_SKEW_MS + 100), PATH, body(""), now)).toBe("node-a");
  });

  it("refuses a credential re-labelled with another node or malformed", () => {
    const a = new PeerAuth(SECRET, "node-a");
    const b = new PeerAuth(SECRET, "node-b");
    const relabelled = a.control("node-b", PATH, body("")).replace("c2~node-a~", "c2~node-c~");
    expect(b.verifyControl(relabelled, PATH, body(""))).toBeUndefined();
    for (const bad of [
      "",
      "node-a",
      "c2~node-a~node-b~1~x~y",
      `node-a.${Date.now()}.${"A".repeat(43)}`,
    ]) {
      expect(b.verifyControl(bad, PATH, body(""))).toBeUndefined();
    }
  });
});

describe("PeerAuth: data-hop credentials", () => {
  it("bound to the owner and the session; reused by the sender for a few seconds", () => {
    const a = new PeerAuth(SECRET, "node-a");
    const b = new PeerAuth(SECRET, "node-b");
    const c = new PeerAuth(SECRET, "node-c");
    const now = Date.now();
    const cred = a.data("node-b", "s1", now);
    expect(a.data("node-b", "s1", now + 1000)).toBe(cred);
    expect(b.verifyData(cred, "s1", now)).toBe("node-a");
    expect(b.verifyData(cred, "s1", now + 1000)).toBe("node-a"); // cached, same answer
    expect(b.verifyData(cred, "s2", now)).toBeUndefined();
    expect(c.verifyData(cred, "s1", now)).toBeUndefined();
    expect(b.verifyData(cred, "s1", now + CLOCK_SKEW_MS + 1)).toBeUndefined();
    expect(
      new PeerAuth(SECRET, "node-b").verifyData(cred, "s1", now + CLOCK_SKEW_MS + 1),
    ).toBeUndefined();
  });
});
