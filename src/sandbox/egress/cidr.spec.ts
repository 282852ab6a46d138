import { describe, expect, it } from "vitest";
import { DEFAULT_DENY, parseCidr, parseCidrs } from "./cidr.ts";

describe("parseCidr", () => {
  it("takes ranges and single addresses of both families, as nft writes them", () => {
    expect(parseCidr("203.0.113.0/24")).toEqual({ family: 4, text: "203.0.113.0/24" });
    expect(parseCidr("203.0.113.7")).toEqual({ family: 4, text: "203.0.113.7/32" });
    expect(parseCidr("2001:DB8::/32")).toEqual({ family: 6, text: "2001:db8::/32" });
    expect(parseCidr("fd00::1")).toEqual({ family: 6, text: "fd00::1/128" });
    expect(parseCidr("0.0.0.0/0")).toEqual({ family: 4, text: "0.0.0.0/0" });
  });
  it("says what is wrong", () => {
    expect(parseCidr("example.com")).toMatch(/not an address or CIDR range/);
    expect(parseCidr("10.0.0.0/33")).toMatch(/prefix length must be 0-32/);
    expect(parseCidr("10.0.0.0/x")).toMatch(/prefix length/);
    expect(parseCidr("10.1.2.3/8")).toMatch(/host bits set; the range is 10.0.0.0\/8/);
    expect(parseCidr("fd00::1/8")).toMatch(/the range is fd00::\/8/);
    expect(parseCidrs(["10.0.0.0/8", "nope"])).toMatch(/^\[1\]: /);
  });
  it("denies by default what DESIGN.md names: link-local, RFC 1918, CGNAT, ULA, loopback", () => {
    for (const range of ["169.254.0.0/16", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]) {
      expect(DEFAULT_DENY).toContain(range);
    }
    for (const range of ["100.64.0.0/10", "fc00::/7", "127.0.0.0/8", "fe80::/10"]) {
      expect(DEFAULT_DENY).toContain(range);
    }
    expect(typeof parseCidrs(DEFAULT_DENY)).not.toBe("string");
  });
});
