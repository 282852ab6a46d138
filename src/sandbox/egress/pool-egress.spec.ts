import { describe, expect, it } from "vitest";
import { chooseNetwork } from "./pool-egress.ts";

describe("chooseNetwork", () => {
  const supported = () => undefined;
  const refused = () => "network: egress needs the daemon to run as root";
  it("keeps what the pool asked for", () => {
    for (const mode of ["egress", "private", "host"] as const) {
      expect(chooseNetwork(mode, undefined, refused)).toEqual({ mode });
    }
  });
  it("gives a pool that says nothing egress where the host supports it", () => {
    expect(chooseNetwork("auto", undefined, supported)).toEqual({ mode: "egress" });
  });
  it("falls back to private, saying why, where it does not", () => {
    expect(chooseNetwork("auto", undefined, refused)).toEqual({
      mode: "private",
      fallback: "network: egress needs the daemon to run as root",
    });
  });
  it("falls back to host where not even private can contain the worker", () => {
    expect(
      chooseNetwork("auto", "a worker running as root can undo its namespaces", supported),
    ).toEqual({
      mode: "host",
      fallback: "egress and private: a worker running as root can undo its namespaces",
    });
  });
});
