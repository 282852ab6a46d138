import { describe, expect, it } from "vitest";
import { fdBudget, softNofile } from "./fd-budget.ts";

const limits = (soft: string, hard = "1048576") =>
  `Limit                     Soft Limit           Hard Limit           Units     \nMax cpu time              unlimited            unlimited            seconds   \nMax open files            ${soft}                 ${hard}              files     \n`;

describe("the descriptor budget", () => {
  it("reads the soft open-files limit, not the hard one", () => {
    expect(softNofile(limits("1024"))).toBe(1024);
    expect(softNofile(limits("unlimited"))).toBe(1 << 20);
    expect(softNofile("garbage", 777)).toBe(777);
    expect(softNofile()).toBeGreaterThan(0); // this process's own /proc/self/limits
  });

  it("keeps a quarter (at least 128) back and never plans past the limit", () => {
    for (const nofile of [64, 256, 1024, 4096, 20_000, 1 << 20]) {
      const b = fdBudget(nofile);
      expect(b.reserved).toBe(Math.max(128, Math.floor(nofile / 4)));
      // Two descriptors per data-plane connection, one per control-plane connection.
      expect(2 * b.dataConnections + b.controlConnections + b.reserved).toBeLessThanOrEqual(
        Math.max(nofile, b.reserved + 3),
      );
    }
    expect(fdBudget(1024)).toMatchObject({
      reserved: 256,
      dataConnections: 307,
      controlConnections: 153,
    });
  });
});
