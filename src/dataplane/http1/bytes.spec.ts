import { describe, expect, it } from "vitest";
import { nameEquals } from "./bytes.ts";

describe("nameEquals", () => {
  it("folds ASCII letters only: a configured header name with _ or ~ matches itself alone", () => {
    const at = (name: string, lower: string) =>
      nameEquals(Buffer.from(name, "latin1"), 0, name.length, lower);
    expect(at("X_Session-ID", "x_session-id")).toBe(true);
    expect(at("x~id", "x~id")).toBe(true);
    expect(at("x^id", "x~id")).toBe(false);
    expect(at("x\x7fid", "x_id")).toBe(false);
    expect(at("X-SESSION-ID", "x-session-id")).toBe(true);
    expect(at("X-Session-I", "x-session-id")).toBe(false);
  });
});
