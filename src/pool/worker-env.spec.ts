import { describe, expect, it } from "vitest";
import { workerEnv } from "./worker-env.ts";

const daemon = {
  PATH: "/usr/bin:/bin",
  HOME: "/home/herd",
  LANG: "C.UTF-8",
  LC_ALL: "C.UTF-8",
  LC_TIME: "en_GB.UTF-8",
  TZ: "UTC",
  HERD_TOKEN: "control-secret",
  AWS_SECRET_ACCESS_KEY: "cloud-secret",
  NODE_OPTIONS: "--inspect",
  SHARED_CACHE: "/var/cache/x",
  UNSET: undefined,
};

describe("workerEnv", () => {
  it("gives PATH, HOME, LANG, LC_*, TZ and PORT, nothing else of the daemon's", () => {
    expect(workerEnv({ daemon, passthrough: [], pool: {}, port: "4001" })).toEqual({
      PATH: "/usr/bin:/bin",
      HOME: "/home/herd",
      LANG: "C.UTF-8",
      LC_ALL: "C.UTF-8",
      LC_TIME: "en_GB.UTF-8",
      TZ: "UTC",
      PORT: "4001",
    });
  });

  it("adds passthrough names where the daemon has them; an unset one stays absent", () => {
    const env = workerEnv({
      daemon,
      passthrough: ["SHARED_CACHE", "UNSET", "NOT_THERE"],
      pool: {},
      port: "1",
    });
    expect(env.SHARED_CACHE).toBe("/var/cache/x");
    expect(Object.keys(env)).not.toContain("UNSET");
    expect(Object.keys(env)).not.toContain("NOT_THERE");
    expect(env.HERD_TOKEN).toBeUndefined();
  });

  it("lets the pool's env override inherited and passed names, and PORT override all", () => {
    const env = workerEnv({
      daemon,
      passthrough: ["SHARED_CACHE"],
      pool: { HOME: "/srv/w", SHARED_CACHE: "/tmp/c", PORT: "9", EXTRA: "1" },
      port: "4001",
    });
    expect(env).toMatchObject({ HOME: "/srv/w", SHARED_CACHE: "/tmp/c", PORT: "4001", EXTRA: "1" });
  });

  it("sets only what exists: a daemon without HOME gives a worker without HOME", () => {
    expect(workerEnv({ daemon: { PATH: "/bin" }, passthrough: [], pool: {}, port: "2" })).toEqual({
      PATH: "/bin",
      PORT: "2",
    });
  });
});
