// The `tenants` section (DESIGN.md, "Tenants") and data.anonymous_tenant: the schema of one
// tenant, and its resolution — the key read from its variable or file, its pools checked
// against the configured ones, its rate parsed — with the checks that span tenants: keys long
// enough to be keys, distinct from each other and from control.token (compared in constant
// time), and an operator token to tell the operator from the tenants.

import { createHash, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import * as z from "zod";
import { MIN_TENANT_KEY_LENGTH, NAME_PATTERN, type TenantOptions } from "../core/index.ts";
import { didYouMean } from "./did-you-mean.ts";
import type { PathIssue } from "./zod-issues.ts";

const RATE = /^([1-9][0-9]{0,8})\/(s|m)$/;

export const tenantSchema = z.strictObject({
  key_env: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: "expected an environment variable name" })
    .optional(),
  key_file: z.string().min(1, { error: "must not be empty" }).optional(),
  pools: z.array(z.string(), { error: "expected a list of pool names" }).optional(),
  max_sessions: z.int().min(1).optional(),
  acquire_rate: z
    .string({ error: 'expected a rate like "5/s" or "100/m"' })
    .regex(RATE, { error: 'expected a rate like "5/s" or "100/m" (a whole number ≥ 1 per s or m)' })
    .optional(),
  weight: z.int().min(1).max(1_000).optional(),
});

export const tenantsSchema = z
  .record(
    z.string().regex(NAME_PATTERN, {
      error: "a tenant name is 1-63 of A-Z a-z 0-9 . _ - (starting with a letter or digit)",
    }),
    tenantSchema,
  )
  .nullish()
  .transform((v) => v ?? undefined);

type RawTenants = NonNullable<z.output<typeof tenantsSchema>>;

/** Equal keys, compared in time that does not depend on where they differ. */
function sameKey(a: string, b: string): boolean {
  const ha = createHash("sha256").update(a).digest();
  const hb = createHash("sha256").update(b).digest();
  return timingSafeEqual(ha, hb);
}

export interface TenantsContext {
  baseDir: string;
  env: Readonly<Record<string, string | undefined>>;
  pools: readonly string[];
  /** control.token, resolved. */
  token: string | undefined;
  /** data.anonymous_tenant as written. */
  anonymousTenant: string | undefined;
}

/** The tenants, or undefined without a section; problems go to `issues`. */
export function buildTenants(
  raw: RawTenants | undefined,
  ctx: TenantsContext,
  issues: PathIssue[],
): TenantOptions[] | undefined {
  if (raw === undefined) {
    if (ctx.anonymousTenant !== undefined) {
      issues.push({
        path: ["data", "anonymous_tenant"],
        message: "names a tenant, but there is no tenants section",
      });
    }
    return undefined;
  }
  const names = Object.keys(raw);
  if (ctx.token === undefined) {
    issues.push({
      path: ["tenants"],
      at: "key",
      message:
        "tenants need an operator key to tell the operator from them: set control.token or control.token_env",
    });
  }
  if (ctx.anonymousTenant !== undefined && !names.includes(ctx.anonymousTenant)) {
    const guess = didYouMean(ctx.anonymousTenant, names);
    issues.push({
      path: ["data", "anonymous_tenant"],
      message: `no tenant named ${JSON.stringify(ctx.anonymousTenant)}${guess ? ` (did you mean ${JSON.stringify(guess)}?)` : ` (tenants: ${names.join(", ")})`}`,
    });
  }
  const tenants: TenantOptions[] = [];
  const seen: { name: string; key: string }[] = [];
  for (const [name, t] of Object.entries(raw)) {
    const at = (...rest: (string | number)[]) => ["tenants", name, ...rest];
    const key = tenantKey(name, t, ctx, issues);
    if (key !== undefined) {
      const where = t.key_env !== undefined ? at("key_env") : at("key_file");
      if (ctx.token !== undefined && sameKey(key, ctx.token)) {
        issues.push({ path: where, message: "the key is control.token's: a tenant needs its own" });
      }
      const twin = seen.find((s) => sameKey(s.key, key));
      if (twin) {
        issues.push({
          path: where,
          message: `the key is tenant ${twin.name}'s too: each tenant needs its own`,
        });
      }
      seen.push({ name, key });
    }
    const pools = t.pools ?? [...ctx.pools];
    if (t.pools !== undefined && t.pools.length === 0) {
      issues.push({
        path: at("pools"),
        message: "must name at least one pool (or leave pools out: all)",
      });
    }
    t.pools?.forEach((pool, k) => {
      if (!ctx.pools.includes(pool)) {
        const guess = didYouMean(pool, [...ctx.pools]);
        issues.push({
          path: at("pools", k),
          message: `no pool named ${JSON.stringify(pool)} under workers${guess ? ` (did you mean ${JSON.stringify(guess)}?)` : ` (pools: ${ctx.pools.join(", ")})`}`,
        });
      } else if (t.pools!.indexOf(pool) !== k) {
        issues.push({ path: at("pools", k), message: `${pool} is listed twice` });
      }
    });
    const rate = t.acquire_rate === undefined ? undefined : RATE.exec(t.acquire_rate);
    if (key === undefined) continue;
    tenants.push({
      name,
      key,
      pools,
      maxSessions: t.max_sessions ?? 0,
      ...(rate && {
        acquireRate: { count: Number(rate[1]), perMs: rate[2] === "m" ? 60_000 : 1_000 },
      }),
      weight: t.weight ?? 1,
    });
  }
  return tenants;
}

/** The tenant's key from exactly one of key_env and key_file, long enough to be a key. */
function tenantKey(
  name: string,
  t: z.output<typeof tenantSchema>,
  ctx: TenantsContext,
  issues: PathIssue[],
): string | undefined {
  const at = (key: string) => ["tenants", name, key];
  if ((t.key_env === undefined) === (t.key_file === undefined)) {
    issues.push({
      path: t.key_env === undefined ? ["tenants", name] : at("key_file"),
      ...(t.key_env === undefined && { at: "key" as const }),
      message:
        "set exactly one of key_env (a variable holding the key) and key_file (a file holding it)",
    });
    return undefined;
  }
  let key: string | undefined;
  let where: string;
  let path: (string | number)[];
  if (t.key_env !== undefined) {
    key = ctx.env[t.key_env] || undefined;
    where = t.key_env;
    path = at("key_env");
    if (key === undefined) {
      issues.push({ path, message: `environment variable ${t.key_env} is not set (or empty)` });
      return undefined;
    }
  } else {
    const file = resolve(ctx.baseDir, t.key_file!);
    where = file;
    path = at("key_file");
    try {
      // One trailing newline is the editor's, not the key's.
      key = readFileSync(file, "utf8").replace(/\r?\n$/, "");
    } catch (err) {
      issues.push({
        path,
        message: `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      });
      return undefined;
    }
  }
  if (key.length < MIN_TENANT_KEY_LENGTH || /\s/.test(key) || !/^[\x21-\x7e]+$/.test(key)) {
    issues.push({
      path,
      message: `${where} must hold a key of at least ${MIN_TENANT_KEY_LENGTH} printable characters without spaces (e.g. openssl rand -hex 24); it has ${key.length}`,
    });
    return undefined;
  }
  return key;
}
