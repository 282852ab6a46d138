// Turns zod's issues into one plain sentence per problem, each with the config path it is
// about: unions report the branch the user evidently meant, unknown keys are split one per
// key with a "did you mean", and zod's generic wording is replaced by what a user can act on.

import * as z from "zod";
import { didYouMean } from "./did-you-mean.ts";
import type { ConfigPath } from "./yaml-source.ts";

export interface PathIssue {
  path: ConfigPath;
  message: string;
  /** Point at the map key rather than its value (unknown or invalid keys). */
  at?: "key";
}

export function describeIssues(issues: readonly z.core.$ZodIssue[], root: z.ZodType): PathIssue[] {
  const out: PathIssue[] = [];
  for (const issue of issues) collect(issue, [], root, out);
  return out;
}

function collect(
  issue: z.core.$ZodIssue,
  prefix: readonly PropertyKey[],
  root: z.ZodType,
  out: PathIssue[],
): void {
  const path = [...prefix, ...issue.path];
  switch (issue.code) {
    case "invalid_union": {
      if (issue.input === undefined) {
        out.push({ path, message: "required" });
        return;
      }
      // The one branch whose shape fits (right type, no foreign keys) is what the user meant.
      const meant = issue.errors.filter(
        (branch) =>
          !branch.some((i) => i.code === "unrecognized_keys" && i.path.length === 0) &&
          branch.some(
            (i) => i.path.length > 0 || (i.code !== "invalid_type" && i.code !== "invalid_value"),
          ),
      );
      if (meant.length === 1) {
        for (const inner of meant[0]!) collect(inner, path, root, out);
      } else {
        out.push({ path, message: issue.message });
      }
      return;
    }
    case "unrecognized_keys": {
      const known = keysAt(root, path);
      for (const key of issue.keys) {
        const guess = didYouMean(key, known);
        out.push({
          path: [...path, key],
          at: "key",
          message: `unknown key ${JSON.stringify(key)}${guess ? ` (did you mean ${JSON.stringify(guess)}?)` : ""}`,
        });
      }
      return;
    }
    case "invalid_key":
      for (const inner of issue.issues) out.push({ path, at: "key", message: inner.message });
      return;
    default:
      out.push({ path, message: issue.message });
  }
}

/**
 * zod's per-parse error map: wording for the generic issues. Messages a schema sets itself
 * take precedence over this one, so hand-written hints survive.
 */
export function friendlyMessage(issue: z.core.$ZodRawIssue): string | undefined {
  switch (issue.code) {
    case "invalid_type":
      return issue.input === undefined
        ? "required"
        : `expected ${typeName(issue.expected)}, got ${describeValue(issue.input)}`;
    case "invalid_value":
      return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}, got ${describeValue(issue.input)}`;
    case "too_small":
      return boundMessage(issue.minimum, issue.inclusive, "≥", ">");
    case "too_big":
      return boundMessage(issue.maximum, issue.inclusive, "≤", "<");
    default:
      return undefined;
  }
}

function boundMessage(
  bound: number | bigint,
  inclusive: boolean | undefined,
  orEqual: string,
  strict: string,
): string {
  return `must be ${inclusive === false ? strict : orEqual} ${bound}`;
}

function typeName(expected: string): string {
  switch (expected) {
    case "int":
      return "a whole number";
    case "number":
      return "a number";
    case "string":
      return "a string";
    case "boolean":
      return "true or false";
    case "array":
      return "a list";
    case "object":
    case "record":
      return "a map of keys to values";
    default:
      return expected;
  }
}

export function describeValue(value: unknown): string {
  if (value === null) return "nothing (null)";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a map";
  if (typeof value === "string") {
    return value.length > 40 ? `${JSON.stringify(value.slice(0, 40))}…` : JSON.stringify(value);
  }
  return String(value);
}

/** The keys a strict object accepts at `path`, found by walking the schema. */
function keysAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  let s: z.ZodType | undefined = schema;
  for (const seg of path) {
    s = unwrap(s);
    if (s instanceof z.ZodObject) s = s.shape[String(seg)] as z.ZodType | undefined;
    else if (s instanceof z.ZodRecord) s = s.valueType as z.ZodType;
    else return [];
  }
  s = unwrap(s);
  return s instanceof z.ZodObject ? Object.keys(s.shape) : [];
}

function unwrap(s: z.ZodType | undefined): z.ZodType | undefined {
  for (;;) {
    if (s instanceof z.ZodOptional || s instanceof z.ZodNullable) s = s.unwrap() as z.ZodType;
    else if (s instanceof z.ZodPipe) s = s.in as z.ZodType;
    // A map or a keyword (`isolation: none`): the keys are the map's.
    else if (s instanceof z.ZodUnion) {
      const maps = (s.options as z.ZodType[]).filter((o) => o instanceof z.ZodObject);
      if (maps.length !== 1) return s;
      s = maps[0];
    } else return s;
  }
}
