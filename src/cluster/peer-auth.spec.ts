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

describe("PeerAuth: data-hop connection credentials", () => {
  it("a fresh one opens a connection; the same string on that connection costs no new check", () => {
    const a = new PeerAuth(SECRET, "node-a");
    const b = new PeerAuth(SECRET, "node-b");
    const conn = {};
    const cred = a.connection("node-b");
    expect(b.verifyConnection(cred, conn)).toBe("node-a");
    expect(b.verifyConnection(cred, conn)).toBe("node-a");
    // Minutes later, on the same connection: still its credential.
    expect(b.verifyConnection(cred, conn, Date.now() + 600_000)).toBe("node-a");
  });

  it("is refused on another connection (a replay), on another node, after the window", () => {
    const a = new PeerAuth(SECRET, "node-a");
    const b = new PeerAuth(SECRET, "node-b");
    const c = new PeerAuth(SECRET, "node-c");
    const cred = a.connection("node-b");
    expect(b.verifyConnection(cred, {})).toBe("node-a");
    expect(b.verifyConnection(cred, {})).toBeUndefined();
    expect(c.verifyConnection(a.connection("node-b"), {})).toBeUndefined();
    const now = Date.now();
    const old = a.connection("node-b", now - CLOCK_SKEW_MS - 1);
    expect(b.verifyConnection(old, {}, now)).toBeUndefined();
    const relabelled = a.connection("node-b").replace("d3~node-a~", "d3~node-c~");
    expect(b.verifyConnection(relabelled, {})).toBeUndefined();
    // A control credential is not a data one, nor the reverse.
    expect(b.verifyConnection(a.control("node-b", "/x", Buffer.from("")), {})).toBeUndefined();
    expect(b.verifyControl(a.connection("node-b"), "/x", Buffer.from(""))).toBeUndefined();
  });
});

describe("PeerAuth: relay-hop credentials", () => {
  it("a fresh one verifies once, naming its node and the client's address", () => {
    const a = new PeerAuth(SECRET, "node-a");
    const b = new PeerAuth(SECRET, "node-b");
    for (const client of ["203.0.113.7", "2001:db8::1", "::ffff:127.0.0.1"]) {
      const cred = a.relay("node-b", client);
      expect(b.verifyRelay(cred)).toEqual({ node: "node-a", client });
      // The same preamble on another connection: a replay.
      expect(b.verifyRelay(cred)).toEqual({ error: "already used (a replay)" });
    }
  });

  it("is refused for another node, after the window, altered, with another secret, malformed", () => {
    const a = new PeerAuth(SECRET, "node-a");
    const b = new PeerAuth(SECRET, "node-b");
    const now = Date.now();
    expect(b.verifyRelay(a.relay("node-c", "1.2.3.4"))).toEqual({
      error: "for node node-c, not this one",
    });
    const old = b.verifyRelay(a.relay("node-b", "1.2.3.4", now - CLOCK_SKEW_MS - 1), now);
    expect("error" in old && old.error).toMatch(/outside ±10000 ms/);
    const ahead = b.verifyRelay(a.relay("node-b", "1.2.3.4", now + CLOCK_SKEW_MS + 1), now);
    expect("error" in ahead && ahead.error).toMatch(/outside/);
    const unsigned = { error: "not signed with this cluster's secret" };
    // The client address, the node or the target changed: the MAC no longer matches.
    expect(b.verifyRelay(a.relay("node-b", "1.2.3.4").replace("~1.2.3.4~", "~1.2.3.5~"))).toEqual(
      unsigned,
    );
    expect(b.verifyRelay(a.relay("node-b", "1.2.3.4").replace("r1~node-a~", "r1~node-c~"))).toEqual(
      unsigned,
    );
    const other = new PeerAuth("another-secret-xxxxxx", "node-a");
    expect(b.verifyRelay(other.relay("node-b", "1.2.3.4"))).toEqual(unsigned);
    for (const bad of [
      "",
      "r1~node-a~node-b~1~x~1.2.3.4~y",
      a.relay("node-b", "not an address"),
      a.relay("node-b", "1.2.3.4").slice(0, -1),
      // Other kinds are not relay credentials, nor the reverse.
      a.connection("node-b"),
      a.control("node-b", "/x", Buffer.from("")),
    ]) {
      expect(b.verifyRelay(bad), bad).toEqual({ error: "malformed" });
    }
    expect(b.verifyConnection(a.relay("node-b", "1.2.3.4"), {})).toBeUndefined();
    expect(b.verifyControl(a.relay("node-b", "1.2.3.4"), "/x", Buffer.from(""))).toBeUndefined();
  });
});
