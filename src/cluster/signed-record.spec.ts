import { describe, expect, it } from "vitest";
import { RecordKeys } from "./signed-record.ts";

describe("RecordKeys", () => {
  const keys = new RecordKeys("the-cluster-secret-0123");

  it("a signed record verifies as its kind only; altered or unsigned ones do not", () => {
    const signed = keys.sign("node", '{"node":"a","data":"10.0.0.1:8080"}');
    expect(keys.verify("node", signed)).toBe('{"node":"a","data":"10.0.0.1:8080"}');
    expect(keys.verify("session", signed)).toBeUndefined();
    expect(keys.verify("node", signed.replace("10.0.0.1", "10.6.6.6"))).toBeUndefined();
    expect(keys.verify("node", '{"node":"a","data":"10.0.0.1:8080"}')).toBeUndefined();
    expect(new RecordKeys("another-secret-xxxxxx").verify("node", signed)).toBeUndefined();
  });

  it("a sealed token opens only for its session and secret, and does not show the token", () => {
    const sealed = keys.sealToken("s1", "tok-123456");
    expect(sealed).not.toContain("tok-123456");
    expect(keys.openToken("s1", sealed)).toBe("tok-123456");
    expect(keys.openToken("s2", sealed)).toBeUndefined();
    expect(new RecordKeys("another-secret-xxxxxx").openToken("s1", sealed)).toBeUndefined();
    expect(keys.openToken("s1", "tok-123456")).toBeUndefined();
  });
});
