// The `tenants` section and data.anonymous_tenant: defaults, and every mistake reported at its
// file:line:col.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "./load-config.ts";

const dir = mkdtempSync(join(tmpdir(), "herd-tenants-config-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const KEY_A = `${"a".repeat(20)}-key-of-acme-0123`;
const KEY_B = `${"b".repeat(20)}-key-of-beta-0123`;
const OP = "operator-token";
const ENV = { PATH: process.env.PATH, KA: KEY_A, KB: KEY_B, OPT: OP, SHORT: "short-key" };

let n = 0;
function load(tenants: string, top = `control:\n  token_env: OPT\n`) {
  const path = join(dir, `c${n++}.yaml`);
  writeFileSync(
    path,
    `${top}workers:\n  web:\n    cmd: ["node", "w.js"]\n  gpu:\n    cmd: ["node", "w.js"]\n${tenants}`,
  );
  try {
    return { config: loadConfig(path, { env: ENV, checkCommands: false }) };
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return { errors: (err as Error).message.split("\n").map((l) => l.replace(`${path}:`, "")) };
  }
}

describe("tenants config", () => {
  it("fills the defaults: every pool, no session cap, no rate, weight 1", () => {
    const { config, errors } = load("tenants:\n  acme:\n    key_env: KA\n");
    expect(errors).toBeUndefined();
    expect(config?.tenants).toEqual([
      { name: "acme", key: KEY_A, pools: ["web", "gpu"], maxSessions: 0, weight: 1 },
    ]);
    expect(config?.data.anonymousTenant).toBeUndefined();
  });

  it("reads every key: a key file (one trailing newline dropped), pools, quotas, weight", () => {
    const file = join(dir, "beta.key");
    writeFileSync(file, `${KEY_B}\n`);
    const { config, errors } = load(
      `tenants:\n  acme:\n    key_env: KA\n    pools: [gpu]\n    max_sessions: 20\n    acquire_rate: "5/s"\n    weight: 3\n  beta:\n    key_file: beta.key\n    acquire_rate: 90/m\n`,
      `control:\n  token_env: OPT\ndata:\n  anonymous_tenant: beta\n`,
    );
    expect(errors).toBeUndefined();
    expect(config?.tenants).toEqual([
      {
        name: "acme",
        key: KEY_A,
        pools: ["gpu"],
        maxSessions: 20,
        acquireRate: { count: 5, perMs: 1000 },
        weight: 3,
      },
      {
        name: "beta",
        key: KEY_B,
        pools: ["web", "gpu"],
        maxSessions: 0,
        acquireRate: { count: 90, perMs: 60_000 },
        weight: 1,
      },
    ]);
    expect(config?.data.anonymousTenant).toBe("beta");
  });

  it("reports each mistake where it is", () => {
    const t = (body: string, top?: string) => load(`tenants:\n${body}`, top).errors;
    // Line 9 is the tenant's name, 10 its first key.
    expect(t("  acme:\n    pools: [web]\n")).toEqual([
      "9:3: tenants.acme: set exactly one of key_env (a variable holding the key) and key_file (a file holding it)",
    ]);
    expect(t("  acme:\n    key_env: KA\n    key_file: x\n")).toEqual([
      "11:15: tenants.acme.key_file: set exactly one of key_env (a variable holding the key) and key_file (a file holding it)",
    ]);
    expect(t("  acme:\n    key_env: NOPE\n")).toEqual([
      "10:14: tenants.acme.key_env: environment variable NOPE is not set (or empty)",
    ]);
    expect(t("  acme:\n    key_env: SHORT\n")).toEqual([
      "10:14: tenants.acme.key_env: SHORT must hold a key of at least 32 printable characters without spaces (e.g. openssl rand -hex 24); it has 9",
    ]);
    expect(t("  acme:\n    key_file: missing.key\n")?.[0]).toMatch(
      /^10:15: tenants\.acme\.key_file: cannot read .*missing\.key: ENOENT$/,
    );
    expect(t("  acme:\n    key_env: KA\n  beta:\n    key_env: KA\n")).toEqual([
      "12:14: tenants.beta.key_env: the key is tenant acme's too: each tenant needs its own",
    ]);
    expect(t("  acme:\n    key_env: KA\n", `control:\n  token: ${KEY_A}\n`)).toEqual([
      "10:14: tenants.acme.key_env: the key is control.token's: a tenant needs its own",
    ]);
    expect(t("  acme:\n    key_env: KA\n    pools: [web, gpux, web]\n")).toEqual([
      '11:18: tenants.acme.pools[1]: no pool named "gpux" under workers (did you mean "gpu"?)',
      "11:24: tenants.acme.pools[2]: web is listed twice",
    ]);
    expect(t("  acme:\n    key_env: KA\n    pools: []\n")).toEqual([
      "11:12: tenants.acme.pools: must name at least one pool (or leave pools out: all)",
    ]);
    expect(t('  acme:\n    key_env: KA\n    acquire_rate: "5/h"\n')?.[0]).toMatch(
      /^11:19: tenants\.acme\.acquire_rate: expected a rate like "5\/s" or "100\/m"/,
    );
    expect(t("  acme:\n    key_env: KA\n    weight: 0\n")?.[0]).toMatch(
      /^11:13: tenants\.acme\.weight: /,
    );
    expect(t("  acme:\n    key_env: KA\n    max_sessions: 0\n")?.[0]).toMatch(
      /^11:19: tenants\.acme\.max_sessions: /,
    );
    expect(t("  acme:\n    key_env: KA\n    keys: x\n")?.[0]).toMatch(/^11:5: tenants\.acme/);
    expect(t("  acme:\n    key_env: KA\n", "")).toEqual([
      "6:1: tenants: tenants need an operator key to tell the operator from them: set control.token or control.token_env",
    ]);
    expect(
      t(
        "  acme:\n    key_env: KA\n",
        "control:\n  token_env: OPT\ndata:\n  anonymous_tenant: acm\n",
      ),
    ).toEqual(['4:21: data.anonymous_tenant: no tenant named "acm" (did you mean "acme"?)']);
    expect(load("", "data:\n  anonymous_tenant: acme\n").errors).toEqual([
      "2:21: data.anonymous_tenant: names a tenant, but there is no tenants section",
    ]);
  });
});
