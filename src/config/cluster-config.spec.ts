// The `cluster` section: defaults, and every mistake reported at its file:line:col.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "./load-config.ts";

const dir = mkdtempSync(join(tmpdir(), "herd-cluster-config-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const ENV = { PATH: process.env.PATH, S: "0123456789abcdef-secret", R: "redis://10.0.0.9:6379/2" };

let n = 0;
function load(cluster: string, top = "", env: Record<string, string | undefined> = ENV) {
  const path = join(dir, `c${n++}.yaml`);
  writeFileSync(path, `${top}workers:\n  w:\n    cmd: ["node", "w.js"]\ncluster:\n${cluster}`);
  try {
    return { config: loadConfig(path, { env, checkCommands: false }) };
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return { errors: (err as Error).message.split("\n").map((l) => l.replace(`${path}:`, "")) };
  }
}

describe("cluster config", () => {
  it("fills the defaults: node hostname-pid, advertise = the listen addresses, lease 5s", () => {
    const { config } = load(`  redis: "redis://127.0.0.1:6379/0"\n  secret_env: S\n`);
    expect(config?.cluster).toEqual({
      redisUrl: "redis://127.0.0.1:6379/0",
      node: `${hostname()}-${process.pid}`,
      advertise: { data: "127.0.0.1:8080", control: "127.0.0.1:7070" },
      leaseMs: 5000,
      secret: ENV.S,
    });
    expect(load("  redis_env: R\n  secret_env: S\n").config?.cluster?.redisUrl).toBe(ENV.R);
  });

  it("cluster.hop: relay or forward (unset: the data plane's default, relay)", () => {
    const base = `  redis: "redis://x"\n  secret_env: S\n`;
    expect(load(base).config?.cluster?.hop).toBeUndefined();
    expect(load(`${base}  hop: forward\n`).config?.cluster?.hop).toBe("forward");
    expect(load(`${base}  hop: relay\n`).config?.cluster?.hop).toBe("relay");
    expect(load(`${base}  hop: tunnel\n`).errors).toEqual([
      "7:8: cluster.hop: expected relay or forward",
    ]);
  });

  it("has no cluster without the section", () => {
    const path = join(dir, "single.yaml");
    writeFileSync(path, 'workers:\n  w:\n    cmd: ["node", "w.js"]\n');
    expect(loadConfig(path, { env: ENV, checkCommands: false }).cluster).toBeUndefined();
  });

  it("reports each mistake where it is", () => {
    expect(load(`  redis: "redis://x"\n  redis_env: R\n  secret_env: S\n`).errors).toEqual([
      "6:14: cluster.redis_env: set redis or redis_env, not both",
    ]);
    expect(load(`  redis: "http://x"\n  secret_env: S\n`).errors?.[0]).toMatch(
      /^5:10: cluster\.redis: expected a Redis URL/,
    );
    expect(load(`  redis: "redis://x"\n  secret_env: NOPE\n`).errors).toEqual([
      "6:15: cluster.secret_env: environment variable NOPE is not set (or empty)",
    ]);
    expect(load(`  redis: "redis://x"\n  secret_env: S\n  lease: 100ms\n`).errors).toEqual([
      "7:10: cluster.lease: must be between 500ms and 1h",
    ]);
    expect(load(`  secret_env: S\n`).errors?.[0]).toMatch(/^4:1: cluster: set cluster\.redis/);
  });

  it("needs an advertise address when a plane listens on a wildcard", () => {
    const top = 'data:\n  listen: "0.0.0.0:8080"\n  tokens: required\n';
    expect(load(`  redis: "redis://x"\n  secret_env: S\n`, top).errors?.[0]).toMatch(
      /cluster: other nodes cannot reach 0\.0\.0\.0:8080: set cluster\.advertise\.data/,
    );
    const ok = load(
      `  redis: "redis://x"\n  secret_env: S\n  advertise:\n    data: "10.1.2.3:8080"\n`,
      top,
    );
    expect(ok.config?.cluster?.advertise.data).toBe("10.1.2.3:8080");
  });
});
