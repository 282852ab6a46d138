import { describe, expect, it } from "vitest";
import { newSessionId, newToken, validateSessionId } from "./ids.ts";

describe("random ids and tokens", () => {
  it("are URL-safe, of their full length, and never repeat across refills of the entropy buffer", () => {
    const seen = new Set<string>();
    // 4 KiB of entropy serves ~170 tokens: this crosses many refills, interleaving both sizes.
    for (let i = 0; i < 2_000; i++) {
      const token = newToken();
      const id = newSessionId();
      expect(token).toMatch(/^[A-Za-z0-9_-]{32}$/);
      expect(id).toMatch(/^[A-Za-z0-9_-]{22}$/);
      expect(validateSessionId(id)).toBe(id);
      seen.add(token).add(id);
    }
    expect(seen.size).toBe(4_000);
  });
});
