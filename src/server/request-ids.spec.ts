// request_id's memory: an entry lives while its session does (or its acquire is in flight),
// a failed acquire leaves none, and entries of ended sessions are swept, so what is kept stays
// proportional to the live sessions however many acquires came.
import { describe, expect, it } from "vitest";
import { RequestIds, validateRequestId } from "./request-ids.ts";

describe("RequestIds", () => {
  it("gives a retry the first acquire's id while its session lives, per caller", () => {
    const live = new Set<string>();
    const ids = new RequestIds((id) => live.has(id));
    const first = ids.take("operator", "r", undefined);
    // A retry while the first is in flight joins it.
    const retry = ids.take("operator", "r", undefined);
    expect(retry.sessionId).toBe(first.sessionId);
    live.add(first.sessionId);
    ids.settle("operator", "r", first);
    ids.settle("operator", "r", retry);
    const again = ids.take("operator", "r", undefined);
    expect(again.sessionId).toBe(first.sessionId);
    ids.settle("operator", "r", again);
    const theirs = ids.take("tenant:acme", "r", undefined);
    expect(theirs.sessionId).not.toBe(first.sessionId);
    ids.settle("tenant:acme", "r", theirs);
    // Once the session has ended a retry gets a new id.
    live.delete(first.sessionId);
    expect(ids.take("operator", "r", undefined).sessionId).not.toBe(first.sessionId);
  });

  it("keeps nothing of a failed acquire, and sweeps ended sessions' entries", () => {
    const live = new Set<string>();
    const ids = new RequestIds((id) => live.has(id));
    const failed = ids.take("operator", "gone", undefined);
    ids.settle("operator", "gone", failed);
    expect(ids.size).toBe(0);
    // 100 000 acquires whose sessions each end before the next: memory stays bounded.
    for (let k = 0; k < 100_000; k++) {
      const e = ids.take("operator", `req-${k}`, undefined);
      live.add(e.sessionId);
      ids.settle("operator", `req-${k}`, e);
      live.delete(e.sessionId);
    }
    expect(ids.size).toBeLessThanOrEqual(257);
    // Entries of live sessions are kept.
    const kept = ids.take("operator", "kept", undefined);
    live.add(kept.sessionId);
    ids.settle("operator", "kept", kept);
    for (let k = 0; k < 1_000; k++)
      ids.settle("operator", `x${k}`, ids.take("operator", `x${k}`, undefined));
    expect(ids.take("operator", "kept", undefined).sessionId).toBe(kept.sessionId);
  });

  it("refuses a request_id over 128 characters or not printable ASCII", () => {
    expect(validateRequestId("a".repeat(128))).toHaveLength(128);
    expect(() => validateRequestId("a".repeat(129))).toThrow(/at most 128/);
    expect(() => validateRequestId("tab\there")).toThrow(/printable ASCII/);
  });
});
