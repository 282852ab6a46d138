import { describe, expect, it } from "vitest";
import { formatWorkerAddress, netConnectOptions, workerEndpoint } from "./worker-endpoint.ts";

describe("worker addresses", () => {
  it.each([
    ["127.0.0.1:8080", { host: "127.0.0.1", port: 8080 }],
    ["[::1]:9", { host: "::1", port: 9 }],
    [
      "unix:/run/herd-sandbox-x/1/relay/http.sock",
      { socketPath: "/run/herd-sandbox-x/1/relay/http.sock" },
    ],
  ])("%s", (address, endpoint) => {
    expect(workerEndpoint(address)).toEqual(endpoint);
    if (!address.startsWith("[")) expect(formatWorkerAddress(endpoint)).toBe(address);
  });

  it("gives net.connect a path for a relay socket", () => {
    expect(netConnectOptions({ socketPath: "/s" })).toEqual({ path: "/s" });
    expect(netConnectOptions({ host: "h", port: 1 })).toEqual({ host: "h", port: 1 });
  });
});
