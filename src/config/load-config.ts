// Loading herd.yaml: YAML syntax, then shape (zod), then meaning (build-config.ts). Every
// problem found at one stage is reported together, each as `file:line:col: path: message`.

import { readFileSync } from "node:fs";
import { relative, resolve } from "node:path";
import { buildConfig } from "./build-config.ts";
import type { HerdConfig } from "./herd-config.ts";
import { configSchema } from "./schema.ts";
import { type ConfigPath, YamlSource } from "./yaml-source.ts";
import { describeIssues, friendlyMessage, type PathIssue } from "./zod-issues.ts";

export interface ConfigIssue {
  /** The file as the user named it. */
  file: string;
  line: number;
  col: number;
  /** Dotted config path, e.g. `workers.browser.cmd[2]`; empty for syntax errors. */
  path: string;
  message: string;
}

export class ConfigError extends Error {
  override readonly name = "ConfigError";
  constructor(
    message: string,
    readonly issues: readonly ConfigIssue[] = [],
  ) {
    super(message);
  }
}

export interface LoadOptions {
  /** For `token_env` and the PATH lookup of worker commands; default process.env. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Check that each pool's program exists (default true). */
  checkCommands?: boolean;
  /** Told each warning (see formatWarning) once the config has loaded without error. */
  onWarning?: (warning: ConfigIssue) => void;
}

export function loadConfig(file: string, opts: LoadOptions = {}): HerdConfig {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === "ENOENT"
        ? "no such file"
        : code === "EISDIR"
          ? "is a directory, not a file"
          : code === "EACCES"
            ? "permission denied"
            : (err as Error).message;
    throw new ConfigError(`${file}: cannot read config: ${why}`);
  }
  return parseConfig(text, file, opts);
}

export function parseConfig(text: string, file: string, opts: LoadOptions = {}): HerdConfig {
  const shown = displayName(file);
  const { source, problems } = YamlSource.parse(text);
  if (problems.length > 0) {
    fail(
      problems.map((p) => ({
        file: shown,
        line: p.line,
        col: p.col,
        path: "",
        message: p.message,
      })),
    );
  }
  const place = (path: ConfigPath, message: string, at?: "key"): ConfigIssue => ({
    file: shown,
    ...source.locate(path, at === "key" ? "key" : "value"),
    path: formatPath(path),
    message,
  });

  let data: unknown;
  try {
    data = source.toJS();
  } catch (err) {
    fail([place([], (err as Error).message)]); // e.g. an alias bomb beyond maxAliasCount
  }
  const parsed = configSchema.safeParse(data ?? {}, { reportInput: true, error: friendlyMessage });
  if (!parsed.success) {
    fail(
      describeIssues(parsed.error.issues, configSchema).map((i) => place(i.path, i.message, i.at)),
    );
  }
  const warnings: PathIssue[] = [];
  const built = buildConfig(parsed.data, {
    file: resolve(file),
    env: opts.env ?? process.env,
    checkCommands: opts.checkCommands ?? true,
    warnings,
  });
  if ("issues" in built) fail(built.issues.map((i) => place(i.path, i.message, i.at)));
  for (const w of warnings) opts.onWarning?.(place(w.path, w.message, w.at));
  return built.config;
}

function fail(issues: ConfigIssue[]): never {
  issues.sort((a, b) => a.line - b.line || a.col - b.col);
  throw new ConfigError(issues.map(formatIssue).join("\n"), issues);
}

export function formatIssue(i: ConfigIssue): string {
  return `${i.file}:${i.line}:${i.col}: ${i.path ? `${i.path}: ` : ""}${i.message}`;
}

export function formatWarning(w: ConfigIssue): string {
  return formatIssue({ ...w, message: `warning: ${w.message}` });
}

/** `workers.browser.cmd[2]`; keys that are not identifiers are quoted. */
export function formatPath(path: ConfigPath): string {
  let out = "";
  for (const seg of path) {
    if (typeof seg === "number") out += `[${seg}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(String(seg)))
      out += out ? `.${String(seg)}` : String(seg);
    else out += `[${JSON.stringify(String(seg))}]`;
  }
  return out;
}

/** Paths under the working directory print relative, as the user most likely typed them. */
function displayName(file: string): string {
  const rel = relative(process.cwd(), resolve(file));
  return rel.startsWith("..") || rel === "" ? file : rel;
}
