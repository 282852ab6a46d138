import { describe, expect, it } from "vitest";
import { UidPool } from "./uid-pool.ts";

describe("UidPool", () => {
  it("never hands out a held uid, and reuses a freed one as late as possible", () => {
    const pool = new UidPool(500, 502);
    expect([pool.take(), pool.take()]).toEqual([500, 501]);
    pool.give(500);
    expect(pool.take()).toBe(502);
    expect(pool.take()).toBe(500);
    expect(pool.inUse).toBe(3);
  });

  it("says which range is exhausted", () => {
    const pool = new UidPool(7, 7);
    pool.take();
    expect(() => pool.take()).toThrow(/isolation.uid_range 7-7: all 1 uids are in use/);
  });
});
