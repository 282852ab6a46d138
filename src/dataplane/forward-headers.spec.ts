import { describe, expect, it } from "vitest";
import { requestHeadersForWorker, responseHeadersForClient } from "./forward-headers.ts";
import { scrubReferer } from "./header-rules.ts";

function pairs(raw: string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i < raw.length; i += 2) out.push([raw[i]!, raw[i + 1]!]);
  return out;
}

describe("requestHeadersForWorker", () => {
  const raw = [
    "Host",
    "example:8080",
    "Connection",
    "keep-alive, X-Secret",
    "X-Secret",
    "drop me",
    "Keep-Alive",
    "timeout=5",
    "TE",
    "trailers",
    "Trailer",
    "X-T",
    "Transfer-Encoding",
    "chunked",
    "Proxy-Authorization",
    "Basic x",
    "Upgrade",
    "websocket",
    "X-Herd-Token",
    "secret",
    "x-herd-pool",
    "p",
    "Cookie",
    "herd_token=secret; a=b",
    "X-Forwarded-For",
    "10.0.0.1",
    "X-Forwarded-Proto",
    "https",
    "X-Custom",
    "1",
    "X-Custom",
    "2",
  ];

  it("drops hop-by-hop and herd headers, keeps order and duplicates, sets X-Forwarded-*", () => {
    const out = pairs(
      requestHeadersForWorker(raw, { cookie: "a=b", remoteAddress: "127.0.0.9", upgrade: false }),
    );
    expect(out).toEqual([
      ["Host", "example:8080"],
      ["X-Custom", "1"],
      ["X-Custom", "2"],
      ["Cookie", "a=b"],
      ["X-Forwarded-For", "10.0.0.1, 127.0.0.9"],
      ["X-Forwarded-Proto", "http"],
      ["X-Forwarded-Host", "example:8080"],
    ]);
  });

  it("passes the client's traceparent, unless herd traces the request and sends its own", () => {
    const traced = [...raw, "TraceParent", "00-client", "tracestate", "a=1"];
    const untraced = pairs(
      requestHeadersForWorker(traced, { cookie: undefined, remoteAddress: "::1", upgrade: false }),
    );
    expect(untraced.filter(([n]) => n.toLowerCase() === "traceparent")).toEqual([
      ["TraceParent", "00-client"],
    ]);
    const ours = pairs(
      requestHeadersForWorker(traced, {
        cookie: undefined,
        remoteAddress: "::1",
        upgrade: false,
        traceparent: "00-herd",
      }),
    );
    expect(ours.filter(([n]) => n.toLowerCase() === "traceparent")).toEqual([
      ["traceparent", "00-herd"],
    ]);
    expect(ours).toContainEqual(["tracestate", "a=1"]);
  });

  it("keeps Connection: Upgrade and Upgrade for a handshake", () => {
    const out = pairs(
      requestHeadersForWorker(raw, { cookie: undefined, remoteAddress: "::1", upgrade: true }),
    );
    expect(out.slice(-2)).toEqual([
      ["Connection", "Upgrade"],
      ["Upgrade", "websocket"],
    ]);
    expect(out.find(([n]) => n.toLowerCase() === "cookie")).toBeUndefined();
  });
});

describe("Referer towards the worker", () => {
  it("loses herd's parameters and keeps the rest verbatim", () => {
    const referer =
      "http://h:8080/s/alice/page?a=1&herd_token=SECRET&b=x%20y+z&herd_session=alice#frag";
    const out = pairs(
      requestHeadersForWorker(["Referer", referer], {
        cookie: undefined,
        remoteAddress: "127.0.0.1",
        upgrade: false,
      }),
    );
    expect(out[0]).toEqual(["Referer", "http://h:8080/s/alice/page?a=1&b=x%20y+z#frag"]);
  });

  it.each([
    ["no query", "http://h/p", "http://h/p"],
    ["nothing of herd's", "http://h/p?a=1&herd_tokenx=2", "http://h/p?a=1&herd_tokenx=2"],
    ["only the token", "http://h/p?herd_token=T", "http://h/p"],
    ["percent-encoded name", "http://h/p?herd%5Ftoken=T&a=1", "http://h/p?a=1"],
    ["repeated, valueless", "http://h/p?herd_token=A&herd_token&x", "http://h/p?x"],
    [
      "token before a fragment",
      "http://h/p?herd_token=T#x?herd_token=y",
      "http://h/p#x?herd_token=y",
    ],
    ["malformed encoding kept", "http://h/p?%E0=1&herd_token=T", "http://h/p?%E0=1"],
  ])("%s", (_name, input, expected) => {
    expect(scrubReferer(input)).toBe(expected);
  });
});

describe("responseHeadersForClient", () => {
  it("drops Set-Cookie of herd's cookies, on a 101 too, and keeps the worker's own", () => {
    const raw = [
      "Set-Cookie",
      "herd_session=attacker; Path=/",
      "set-cookie",
      "app=1; Path=/",
      "SET-COOKIE",
      "Herd_Token=stolen",
    ];
    expect(pairs(responseHeadersForClient(raw))).toEqual([["set-cookie", "app=1; Path=/"]]);
    expect(pairs(responseHeadersForClient(["Upgrade", "websocket", ...raw], true))).toEqual([
      ["Upgrade", "websocket"],
      ["set-cookie", "app=1; Path=/"],
    ]);
  });

  it("drops hop-by-hop headers and those Connection lists", () => {
    const raw = [
      "Content-Type",
      "text/plain",
      "Connection",
      "close, X-Hop",
      "X-Hop",
      "1",
      "Transfer-Encoding",
      "chunked",
      "Set-Cookie",
      "a=1",
      "Set-Cookie",
      "b=2",
    ];
    expect(pairs(responseHeadersForClient(raw))).toEqual([
      ["Content-Type", "text/plain"],
      ["Set-Cookie", "a=1"],
      ["Set-Cookie", "b=2"],
    ]);
  });

  it("keeps Connection and Upgrade on a 101", () => {
    const raw = ["Upgrade", "websocket", "Connection", "Upgrade", "Sec-WebSocket-Accept", "x"];
    expect(responseHeadersForClient(raw, true)).toEqual(raw);
  });
});
