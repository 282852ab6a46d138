import { describe, expect, it } from "vitest";
import { UidPool } from "./uid-pool.ts";

describe("UidPool", () => {
  it("never hands out a held uid, and reuses a freed one as late as possible", () => {
    const pool = new UidPool(500, 502);
    expect([pool.take(), pool.take()]).toEqual([500, 501]);
    pool.give(500);
    expect(pool.take()).toBe(502);
    expect(pool.take()).toBe(500);
  });

  it("shares what is held with the other pools of the launcher", () => {
    const held = new Set<number>();
    const a = new UidPool(500, 501, held);
    const b = new UidPool(500, 501, held);
    expect([a.take(), b.take()]).toEqual([500, 501]);
    expect(() => a.take()).toThrow(/all 2 uids are in use/);
  });

  it("says which range is exhausted", () => {
    const pool = new UidPool(7, 7);
    pool.take();
    expect(() => pool.take()).toThrow(/isolation.uid_range 7-7: all 1 uids are in use/);
  });
});
