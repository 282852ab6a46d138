import { describe, expect, it } from "vitest";
import { setsHerdCookie } from "./header-rules.ts";

describe("setsHerdCookie", () => {
  it.each([
    ["herd_session=attacker; Path=/", true],
    ["herd_token=x", true],
    ["  herd_session =x", true],
    ["HERD_Session=x", true],
    ["herd_anything=x; HttpOnly", true],
    ["herd_session", true],
    ["app=herd_session", false],
    ["session=1; Path=/herd_", false],
    ["herdsession=1", false],
    ["__Host-herd_session=1", false],
  ])("%s → %s", (value, herds) => {
    expect(setsHerdCookie(value)).toBe(herds);
  });
});
