import { describe, expect, it } from "vitest";
import { fromOtherOrigin } from "./browser-origin.ts";

const host = "127.0.0.1:8080";
const req = (h: { origin?: string; fetchSite?: string; referer?: string }) =>
  fromOtherOrigin({ host, origin: h.origin, fetchSite: h.fetchSite, referer: h.referer });

describe("fromOtherOrigin", () => {
  it("takes a request without browser headers for a client's own (curl, SDKs)", () => {
    expect(req({})).toBe(false);
  });

  it("believes Sec-Fetch-Site", () => {
    expect(req({ fetchSite: "same-origin" })).toBe(false);
    expect(req({ fetchSite: "none" })).toBe(false);
    expect(req({ fetchSite: "cross-site" })).toBe(true);
    expect(req({ fetchSite: "same-site" })).toBe(true);
    // A same-origin Sec-Fetch-Site does not excuse a foreign Origin.
    expect(req({ fetchSite: "same-origin", origin: "http://evil.test" })).toBe(true);
  });

  it("compares Origin with the Host, scheme aside", () => {
    expect(req({ origin: "http://127.0.0.1:8080" })).toBe(false);
    expect(req({ origin: "https://127.0.0.1:8080" })).toBe(false);
    expect(req({ origin: "http://127.0.0.1:8081" })).toBe(true);
    expect(req({ origin: "null" })).toBe(true);
  });

  it("falls back to the Referer's origin only without the other two", () => {
    expect(req({ referer: "http://127.0.0.1:8080/s/a/page?x=1" })).toBe(false);
    expect(req({ referer: "http://127.0.0.1:8080" })).toBe(false);
    expect(req({ referer: "http://evil.test:8080/" })).toBe(true);
    expect(req({ fetchSite: "same-origin", referer: "http://evil.test/" })).toBe(false);
  });
});
