import { describe, expect, it } from "vitest";
import { isHerdError } from "../core/index.ts";
import { routeRequest } from "./route.ts";

const H = "x-session-id";

describe("routeRequest", () => {
  it("takes the id from the header first and forwards the url untouched", () => {
    const r = routeRequest(
      "/s/other/x?herd_session=q",
      { [H]: "hdr", cookie: "herd_session=c" },
      H,
    );
    expect(r).toMatchObject({ sessionId: "hdr", source: "header", path: "/s/other/x" });
  });

  it("strips a path prefix naming the header's session", () => {
    expect(routeRequest("/s/hdr/x?a=1", { [H]: "hdr" }, H)).toMatchObject({
      sessionId: "hdr",
      source: "header",
      path: "/x?a=1",
    });
    // A malformed prefix names no session: it is the worker's own path.
    expect(routeRequest("/s/%E0%A4/x", { [H]: "hdr" }, H)).toMatchObject({ path: "/s/%E0%A4/x" });
  });

  it("falls back to path prefix, then query, then cookie", () => {
    expect(
      routeRequest("/s/p%3A1/deep/path?b=a%20b+c&herd_session=q", { cookie: "herd_session=c" }, H),
    ).toMatchObject({ sessionId: "p:1", source: "path", path: "/deep/path?b=a%20b+c" });
    expect(routeRequest("/s/p", {}, H)).toMatchObject({ sessionId: "p", path: "/" });
    expect(routeRequest("/s/p?x=1", {}, H)).toMatchObject({ sessionId: "p", path: "/?x=1" });
    expect(
      routeRequest("/a?herd_session=q&b=2", { cookie: "x=1; herd_session=c" }, H),
    ).toMatchObject({ sessionId: "q", source: "query", path: "/a?b=2", cookie: "x=1" });
    expect(routeRequest("/a", { cookie: "x=1; herd_session=c" }, H)).toMatchObject({
      sessionId: "c",
      source: "cookie",
      path: "/a",
      cookie: "x=1",
    });
  });

  it("never lets an ambient cookie override the session the request names", () => {
    const victim = routeRequest("/s/victim/private", { cookie: "herd_session=attacker; app=1" }, H);
    expect(victim).toMatchObject({
      sessionId: "victim",
      source: "path",
      path: "/private",
      cookie: "app=1",
    });
  });

  it("strips herd's token from query and cookie and reports it", () => {
    const r = routeRequest(
      "/x?a=1&herd_token=T1&b=2",
      { [H]: "s", cookie: "herd_token=T2; k=v" },
      H,
    );
    expect(r).toMatchObject({ token: "T1", path: "/x?a=1&b=2", cookie: "k=v" });
    const c = routeRequest("/x", { [H]: "s", cookie: "herd_token=T2" }, H);
    expect(c).toMatchObject({ token: "T2", path: "/x", cookie: undefined });
    const h = routeRequest("/x?herd_token=T1", { [H]: "s", "x-herd-token": "T0" }, H);
    expect(h).toMatchObject({ token: "T0", path: "/x" });
  });

  it("reads the pool header and honours a custom session header", () => {
    const r = routeRequest("/", { "x-agent-id": "agent-7", "x-herd-pool": "gpu" }, "x-agent-id");
    expect(r).toMatchObject({ sessionId: "agent-7", pool: "gpu" });
  });

  it.each([
    ["missing", "/x", {}],
    ["bad header", "/x", { [H]: "has space" }],
    ["too long", "/x", { [H]: "a".repeat(129) }],
    ["bad path id", "/s/a%2Fb/x", {}],
    ["bad path encoding", "/s/%E0%A4/x", {}],
    ["bad encoding", "/x?herd_session=%E0%A4%A", {}],
    ["duplicate header", "/x", { [H]: ["a", "b"] }],
  ])("rejects %s as invalid_argument", (_name, url, headers) => {
    let caught: unknown;
    try {
      routeRequest(url, headers, H);
    } catch (err) {
      caught = err;
    }
    expect(isHerdError(caught, "invalid_argument")).toBe(true);
  });
});
