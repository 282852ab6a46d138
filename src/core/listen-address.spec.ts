import { describe, expect, it } from "vitest";
import { formatHostPort, isLoopback, parseListenAddress } from "./listen-address.ts";

describe("parseListenAddress", () => {
  it.each([
    ["127.0.0.1:7070", "127.0.0.1", 7070],
    ["localhost:0", "localhost", 0],
    ["[::1]:8080", "::1", 8080],
    [":7070", "0.0.0.0", 7070],
    ["0.0.0.0:65535", "0.0.0.0", 65535],
    ["herd.internal:80", "herd.internal", 80],
  ])("%s", (text, host, port) => {
    expect(parseListenAddress(text)).toEqual({ host, port });
  });

  it.each([
    "7070",
    "127.0.0.1",
    "127.0.0.1:",
    "127.0.0.1:70000",
    "::1:7070",
    "[nope]:1",
    "a b:1",
    "h:-1",
  ])("rejects %j", (text) => {
    expect(parseListenAddress(text)).toHaveProperty("error");
  });
});

describe("isLoopback", () => {
  it.each([
    ["127.0.0.1", true],
    ["127.8.9.10", true],
    ["localhost", true],
    ["::1", true],
    ["0.0.0.0", false],
    ["::", false],
    ["10.0.0.1", false],
    ["example.com", false],
  ])("%s → %s", (host, expected) => {
    expect(isLoopback(host)).toBe(expected);
  });

  it("brackets IPv6 when formatting", () => {
    expect(formatHostPort("::1", 1)).toBe("[::1]:1");
    expect(formatHostPort("127.0.0.1", 1)).toBe("127.0.0.1:1");
  });
});
