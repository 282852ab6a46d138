import { describe, expect, it } from "vitest";
import { AllowedHosts, hostOf, hostPatternError, sessionHostError } from "./allowed-hosts.ts";

describe("AllowedHosts", () => {
  const hosts = new AllowedHosts("herd.internal", ["api.example.com", "*.apps.example.com"]);

  it("answers what no web page can own, the bound name and allowed_hosts", () => {
    for (const host of [
      "127.0.0.1:8080",
      "10.1.2.3",
      "[::1]:7070",
      "[fe80::1]",
      "localhost:8080",
      "LOCALHOST",
      "app.localhost:3000",
      "herd",
      "herd-1:8080",
      "herd.internal:8080",
      "API.example.com.",
      "x.apps.example.com",
      "a.b.apps.example.com:443",
      undefined,
    ]) {
      expect(hosts.allows(host), String(host)).toBe(true);
    }
  });

  it("refuses other names, whatever the port", () => {
    for (const host of [
      "evil.test:8080",
      "apps.example.com",
      "example.com",
      "localhost.evil.test",
      "127.0.0.1.evil.test",
      "api.example.com.evil.test",
      "",
    ]) {
      expect(hosts.allows(host), host).toBe(false);
    }
  });

  it("answers any Host with *", () => {
    expect(new AllowedHosts("127.0.0.1", ["*"]).allows("evil.test")).toBe(true);
  });

  it("gives the same verdict from its cache, also past its bound", () => {
    const h = new AllowedHosts("127.0.0.1");
    for (let i = 0; i < 600; i++) expect(h.allows(`n${i}.evil.test`)).toBe(false);
    expect(h.allows("localhost")).toBe(true);
    expect(h.allows("n1.evil.test")).toBe(false);
  });

  it("reads the host of a Host value", () => {
    expect(hostOf("Example.COM.:80")).toBe("example.com");
    expect(hostOf("[::1]:80")).toBe("::1");
  });
});

describe("pattern checks", () => {
  it("allowed_hosts: names, *.suffix, * and IP addresses", () => {
    for (const ok of ["a.example.com", "*.example.com", "*", "herd", "10.0.0.1", "::1"]) {
      expect(hostPatternError(ok), ok).toBeUndefined();
    }
    for (const bad of ["http://a.example.com", "a.example.com:80", "*example.com", "a/b", ""]) {
      expect(hostPatternError(bad), bad).toMatch(/is not a host name/);
    }
  });

  it("session_host: {id} once, in the first label", () => {
    expect(sessionHostError("{id}.sessions.example.com")).toBeUndefined();
    expect(sessionHostError("s-{id}.example.com")).toBeUndefined();
    expect(sessionHostError("sessions.{id}.example.com")).toMatch(/first label/);
    expect(sessionHostError("{id}.{id}.example.com")).toMatch(/once/);
    expect(sessionHostError("{id}")).toMatch(/first label/);
    expect(sessionHostError("{id}.example.com:8080")).toMatch(/not a host name/);
  });
});
