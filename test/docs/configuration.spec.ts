// Keeps docs/configuration.md true to the config loader: every key the schema accepts is
// documented and every documented key exists, the complete example loads, and every default
// the tables state as a plain value is the default the loader really applies.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { configSchema, parseConfig, poolSchema, tenantSchema } from "../../src/config/index.ts";

const DOC_PATH = new URL("../../docs/configuration.md", import.meta.url).pathname;
const doc = readFileSync(DOC_PATH, "utf8");

/** Rows of the markdown table under `heading`: [key, default] with backticks kept. */
function tableRows(heading: string): [string, string][] {
  const start = doc.indexOf(`## ${heading}`);
  expect(start, `heading "${heading}" in configuration.md`).toBeGreaterThanOrEqual(0);
  const section = doc.slice(start).split("\n## ")[0]!;
  return section
    .split("\n")
    .filter((l) => l.startsWith("| `"))
    .map((l) => {
      // Cells are padded by the formatter: split on pipes and trim.
      const cells = l.split("|").map((c) => c.trim());
      return [cells[1]!.replace(/^`|`$/g, ""), cells[2]!];
    });
}

// Zod internals are walked only to list keys: optional/nullable/pipe wrappers are unwrapped,
// objects recursed into; a union of one object and literals is the key itself (the literals
// are its values, e.g. `isolation: none`) plus the object's keys; anything else (records, other
// unions, leaves) is one key.
type Def = {
  type: string;
  shape?: Record<string, unknown>;
  in?: unknown;
  innerType?: unknown;
  options?: unknown[];
};
const def = (s: unknown) => (s as { _zod: { def: Def } })._zod.def;
function unwrap(s: unknown): Def {
  let d = def(s);
  while (true) {
    if (d.type === "pipe") d = def(d.in);
    else if (d.type === "optional" || d.type === "nullable") d = def(d.innerType);
    else return d;
  }
}
function keys(s: unknown, prefix = ""): string[] {
  const d = unwrap(s);
  if (d.type === "union") {
    const types = (d.options ?? []).map((o) => unwrap(o).type);
    const object = (d.options ?? []).find((o) => unwrap(o).type === "object");
    if (object && types.filter((t) => t !== "literal").length === 1) {
      return [prefix.slice(0, -1), ...keys(object, prefix)];
    }
  }
  if (d.type !== "object" || !d.shape) return [prefix.slice(0, -1)];
  return Object.entries(d.shape).flatMap(([k, v]) => keys(v, `${prefix}${k}.`));
}

const ENV = {
  PATH: process.env.PATH,
  HERD_TOKEN: "t0ken",
  HERD_REDIS_URL: "redis://127.0.0.1:6379/0",
  HERD_CLUSTER_SECRET: "0123456789abcdef",
  HERD_KEY_ACME: "acme-0123456789abcdef0123456789abcdef",
};
const load = (yaml: string) =>
  parseConfig(yaml, `${process.cwd()}/herd.yaml`, { env: ENV, checkCommands: false });

describe("docs/configuration.md", () => {
  it("documents exactly the keys the loader accepts", () => {
    const topLevel = keys(configSchema).sort();
    const pool = keys(poolSchema).sort();
    expect(
      tableRows("Top level")
        .map(([k]) => k)
        .sort(),
    ).toEqual(topLevel);
    expect(
      tableRows("Pool keys")
        .map(([k]) => k)
        .sort(),
    ).toEqual(pool);
    expect(
      tableRows("Tenant keys")
        .map(([k]) => k)
        .sort(),
    ).toEqual(keys(tenantSchema).sort());
  });

  it("has a complete example that loads and uses every key", () => {
    const block = /## A complete example[\s\S]*?```yaml\n([\s\S]*?)```/.exec(doc)?.[1];
    expect(block).toBeDefined();
    const config = load(block!);
    expect(config.pools.map((p) => p.name)).toEqual(["browser"]);
    expect(config.control.token).toBe("t0ken");
    const raw = parse(block!) as {
      workers: Record<string, object>;
      tenants: Record<string, object>;
    };
    // token and redis are the commented-out alternatives of token_env and redis_env.
    const used = keys(configSchema).filter(
      (k) => k !== "workers" && k !== "control.token" && k !== "cluster.redis",
    );
    const flat = (o: object, prefix = ""): string[] =>
      Object.entries(o).flatMap(([k, v]) =>
        v && typeof v === "object" && !Array.isArray(v) && k !== "env" && k !== "tenants"
          ? flat(v, `${prefix}${k}.`)
          : [`${prefix}${k}`],
      );
    const { workers, ...top } = raw;
    expect(flat(top).sort()).toEqual(used.sort());
    // key_file is the alternative of key_env.
    expect(flat(raw.tenants.acme!).sort()).toEqual(
      keys(tenantSchema)
        .filter((k) => k !== "key_file")
        .sort(),
    );
    // `isolation: none` is the alternative of the isolation.* keys the example sets.
    expect(flat(workers.browser!).sort()).toEqual(
      keys(poolSchema)
        .filter((k) => k !== "isolation")
        .sort(),
    );
  });

  it("quotes the seed's config, which loads unchanged", () => {
    const block = /## The seed's config[\s\S]*?```yaml\n([\s\S]*?)```/.exec(doc)?.[1];
    expect(block).toBeDefined();
    const [pool] = load(block!).pools;
    expect(pool).toMatchObject({
      name: "browser",
      min: 1,
      max: 5,
      idleTtlMs: 15 * 60_000,
      reuse: false,
    });
  });

  it("states the loader's real defaults", () => {
    // A default cell holding one plain value (`10m`, `true`, `0` (none)) is checked by
    // loading a config that sets the key to it and one that leaves it out: both must agree.
    const plain = (cell: string) => /^`([^`]+)`(?: \(none\))?$/.exec(cell)?.[1];
    const setAt = (obj: Record<string, unknown>, path: string, value: unknown) => {
      const parts = path.split(".");
      let o = obj;
      for (const p of parts.slice(0, -1)) {
        o[p] ??= {};
        o = o[p] as Record<string, unknown>;
      }
      o[parts.at(-1)!] = value;
    };
    const minimal = { workers: { w: { cmd: ["node", "w.js"] } } };
    const baseline = load(stringify(minimal));
    const checked: string[] = [];
    for (const [section, prefix] of [
      ["Top level", ""],
      ["Pool keys", "workers.w."],
    ] as const) {
      for (const [key, cell] of tableRows(section)) {
        const text = plain(cell);
        if (text === undefined) continue;
        const withDefault = structuredClone(minimal) as Record<string, unknown>;
        setAt(withDefault, `${prefix}${key}`, parse(text));
        expect(load(stringify(withDefault)), `${prefix}${key}: documented default ${text}`).toEqual(
          baseline,
        );
        checked.push(key);
      }
    }
    // Guard against the check silently matching nothing.
    expect(checked).toEqual(expect.arrayContaining(["control.listen", "ttl", "max", "stop_grace"]));
  });
});
