// Whose key a key is: the exact key only, never a prefix, an extension or a case variant.
import { describe, expect, it } from "vitest";
import { OPERATOR } from "../core/index.ts";
import { KeyIndex } from "./key-index.ts";

describe("KeyIndex", () => {
  it("knows each key's caller and nothing near it", () => {
    const acme = { kind: "tenant", name: "acme" } as const;
    const keys = new KeyIndex([
      ["operator-token", OPERATOR],
      ["k".repeat(40), acme],
    ]);
    expect(keys.identify("operator-token")).toBe(OPERATOR);
    expect(keys.identify("k".repeat(40))).toBe(acme);
    for (const guess of ["", "k".repeat(39), "k".repeat(41), "K".repeat(40), "operator-token "]) {
      expect(keys.identify(guess)).toBeUndefined();
    }
  });
});
