// Entry point of the `herd` command (bin/herd runs it): parses the command line, runs one
// command, and turns every failure into one line on stderr and an exit status. Each command's
// module is imported only when that command runs: loading the client, the config schema and
// the server for every invocation made `herd --version` take a second.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { type ParseArgsConfig, parseArgs } from "node:util";
import { packageRoot } from "./package-root.ts";
import { USAGE } from "./usage.ts";

/** Bad usage: exit 2. `unknown` is a word that matched none of `candidates` (a command, an
 * option): the message then ends with the closest one, worked out only when printed. */
class UsageError extends Error {
  constructor(
    message: string,
    readonly unknown?: { word: string; candidates: readonly string[] },
  ) {
    super(message);
  }
}

/** The commands the help text lists (`herd config check` lists "config"). */
const COMMANDS = [...USAGE.matchAll(/^ {2}herd (\w[\w-]*)/gm)].map((m) => m[1]!);

function unknownCommand(words: string, candidates: readonly string[]): UsageError {
  return new UsageError(`unknown command ${JSON.stringify(words)}`, { word: words, candidates });
}

async function describeUsageError(err: UsageError): Promise<string> {
  if (err.unknown === undefined) return err.message;
  const { word, candidates } = err.unknown;
  // Loaded only here: the suggestion lives with the config's, and a typo is not the fast path.
  const { didYouMean } = await import("../config/index.ts");
  const bare = (w: string) => w.replace(/^-+/, "");
  const guess = didYouMean(bare(word), candidates.map(bare));
  const match = candidates.find((c) => bare(c) === guess);
  return match === undefined ? err.message : `${err.message} (did you mean "${match}"?)`;
}

const out = (text: string) => process.stdout.write(`${text}\n`);
/** One line per problem, each prefixed "herd: " except `file:line:col:` lines (for editors). */
const fail = (text: string) =>
  process.stderr.write(
    `${text
      .split("\n")
      .map((l) => (l.startsWith("herd: ") || /^\S+:\d+:\d+: /.test(l) ? l : `herd: ${l}`))
      .join("\n")}\n`,
  );

const JSON_OPTION = { type: "boolean", default: false } as const;

const CLIENT_OPTIONS = {
  addr: { type: "string" },
  token: { type: "string" },
  json: JSON_OPTION,
  pool: { type: "string" },
} as const;

type Options = NonNullable<ParseArgsConfig["options"]>;

/** parseArgs with its errors turned into usage errors, and at most `positionals` operands. */
function parsed<O extends Options>(positionals: number, args: string[], options: O) {
  let r: ReturnType<typeof parseArgs<{ args: string[]; options: O; allowPositionals: true }>>;
  try {
    r = parseArgs({ args, options, allowPositionals: true });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const option = /^Unknown option '([^']+)'/.exec(e.message)?.[1];
    if (e.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" && option !== undefined) {
      throw new UsageError(`unknown option ${JSON.stringify(option)}`, {
        word: option,
        candidates: Object.keys(options).map((o) => `--${o}`),
      });
    }
    throw new UsageError(e.message);
  }
  if (r.positionals.length > positionals) {
    throw new UsageError(`unexpected argument ${JSON.stringify(r.positionals[positionals])}`);
  }
  return r;
}

/** herd's own version, from its package.json. */
function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(join(packageRoot(), "package.json"), "utf8")) as {
    version: string;
  };
  return pkg.version;
}

/** A one-call command's failure: one line for a failed call, exit 1; anything else is a bug. */
async function failedCall(err: unknown, where: string): Promise<number> {
  const { DaemonCallError, describeDaemonError } = await import("./daemon-error.ts");
  if (!(err instanceof DaemonCallError)) throw err;
  fail(describeDaemonError(err, where));
  return 1;
}

async function run(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case undefined:
    case "help":
    case "--help":
    case "-h":
      out(USAGE);
      return command === undefined ? 2 : 0;
    case "--version":
    case "-V":
    case "version": {
      const { values } = parsed(0, rest, { json: JSON_OPTION });
      out(values.json ? JSON.stringify({ version: packageVersion() }) : `herd ${packageVersion()}`);
      return 0;
    }
    case "serve": {
      const { values } = parsed(0, rest, {
        config: { type: "string", short: "c" },
        "log-level": { type: "string" },
        json: JSON_OPTION,
      });
      const level = values["log-level"];
      if (
        level !== undefined &&
        !["fatal", "error", "warn", "info", "debug", "trace", "silent"].includes(level)
      ) {
        throw new UsageError(
          `--log-level: ${JSON.stringify(level)} is not one of fatal, error, warn, info, debug, trace, silent`,
        );
      }
      const { limitStartUpFootprint } = await import("./start-up-footprint.ts");
      const started = limitStartUpFootprint();
      const { serve } = await import("./serve.ts");
      const code = await serve({
        config: values.config ?? "herd.yaml",
        logLevel: level,
        ...(values.json && { logFormat: "json" as const }),
        fail,
        started,
      });
      // Everything is closed by now; a straggling keep-alive timer must not delay the exit.
      return process.exit(code);
    }
    case "config": {
      const [sub, ...args] = rest;
      if (sub === undefined) throw new UsageError("usage: herd config check FILE [--json]");
      if (sub !== "check") throw unknownCommand(`config ${sub}`, ["config check"]);
      const { values, positionals } = parsed(1, args, { json: JSON_OPTION });
      if (positionals[0] === undefined) throw new UsageError("config check needs a FILE");
      const { configCheck } = await import("./config-check.ts");
      return configCheck(positionals[0], { json: values.json }, out, fail);
    }
    case "status":
    case "sessions": {
      const { values } = parsed(0, rest, CLIENT_OPTIONS);
      const [{ unaryClient }, show] = await Promise.all([
        import("./unary-client.ts"),
        command === "status"
          ? import("./status.ts").then((m) => m.status)
          : import("./sessions.ts").then((m) => m.sessions),
      ]);
      const daemon = unaryClient(values);
      try {
        await show(daemon, { pool: values.pool, json: values.json }, out);
        return 0;
      } catch (err) {
        return failedCall(err, daemon.where);
      }
    }
    case "cluster": {
      const [sub, ...args] = rest;
      if (sub === undefined) throw new UsageError("usage: herd cluster status [--pool P] [--json]");
      if (sub !== "status") throw unknownCommand(`cluster ${sub}`, ["cluster status"]);
      const { values } = parsed(0, args, CLIENT_OPTIONS);
      const [{ unaryClient }, { clusterStatus }] = await Promise.all([
        import("./unary-client.ts"),
        import("./cluster-status.ts"),
      ]);
      const daemon = unaryClient(values);
      try {
        await clusterStatus(daemon, { pool: values.pool, json: values.json }, out);
        return 0;
      } catch (err) {
        return failedCall(err, daemon.where);
      }
    }
    case "drain": {
      const { values } = parsed(0, rest, {
        addr: CLIENT_OPTIONS.addr,
        token: CLIENT_OPTIONS.token,
        json: CLIENT_OPTIONS.json,
        "no-wait": { type: "boolean", default: false },
      });
      const [{ unaryClient }, { drain }] = await Promise.all([
        import("./unary-client.ts"),
        import("./drain.ts"),
      ]);
      const daemon = unaryClient(values);
      try {
        return await drain(daemon, { wait: !values["no-wait"], json: values.json }, out);
      } catch (err) {
        return failedCall(err, daemon.where);
      }
    }
    case "restart": {
      const { values } = parsed(0, rest, {
        addr: CLIENT_OPTIONS.addr,
        token: CLIENT_OPTIONS.token,
        json: CLIENT_OPTIONS.json,
      });
      const { unaryClient } = await import("./unary-client.ts");
      const daemon = unaryClient(values);
      try {
        const r = await daemon.client.restartNode({});
        out(
          values.json
            ? JSON.stringify({ pid: r.pid, previousPid: r.previousPid, sessions: r.sessions })
            : `restarted: pid ${r.pid} serves now, with ${r.sessions} live session(s) handed over; pid ${r.previousPid} leaves once its open connections close`,
        );
        return 0;
      } catch (err) {
        return failedCall(err, daemon.where);
      }
    }
    case "watch": {
      const { values } = parsed(0, rest, {
        ...CLIENT_OPTIONS,
        session: { type: "string" },
        snapshot: { type: "boolean", default: false },
        since: { type: "string" },
        count: { type: "string" },
      });
      const number = (name: string, v: string | undefined) => {
        if (v === undefined) return undefined;
        if (!/^\d+$/.test(v))
          throw new UsageError(`--${name}: expected a whole number, got ${JSON.stringify(v)}`);
        return Number(v);
      };
      const [{ connectToDaemon, describeClientError }, { watch }] = await Promise.all([
        import("./client.ts"),
        import("./watch.ts"),
      ]);
      const daemon = connectToDaemon(values);
      const stop = new AbortController();
      process.once("SIGINT", () => stop.abort());
      process.once("SIGTERM", () => stop.abort());
      try {
        await watch(
          daemon,
          {
            pool: values.pool,
            session: values.session,
            snapshot: values.snapshot,
            since: number("since", values.since),
            count: number("count", values.count),
            json: values.json,
            signal: stop.signal,
          },
          out,
          (why) => fail(`watch cut off (${why}); resuming from the last event shown`),
        );
        return 0;
      } catch (err) {
        fail(describeClientError(err, daemon.where));
        return 1;
      }
    }
    case "logs": {
      const { values, positionals } = parsed(1, rest, {
        addr: CLIENT_OPTIONS.addr,
        token: CLIENT_OPTIONS.token,
        json: CLIENT_OPTIONS.json,
        follow: { type: "boolean", short: "f", default: false },
      });
      if (positionals[0] === undefined) throw new UsageError("logs needs a SESSION id");
      const [{ connectToDaemon, describeClientError }, { logs }] = await Promise.all([
        import("./client.ts"),
        import("./logs.ts"),
      ]);
      const daemon = connectToDaemon(values);
      const stop = new AbortController();
      process.once("SIGINT", () => stop.abort());
      process.once("SIGTERM", () => stop.abort());
      const write = (data: Uint8Array) =>
        new Promise<void>((resolve) => {
          const text = values.json
            ? `${JSON.stringify({ data: Buffer.from(data).toString("base64") })}\n`
            : data;
          if (process.stdout.write(text)) resolve();
          else process.stdout.once("drain", resolve);
        });
      try {
        await logs(
          daemon,
          { session: positionals[0], follow: values.follow, signal: stop.signal },
          write,
        );
        return 0;
      } catch (err) {
        fail(describeClientError(err, daemon.where));
        return 1;
      }
    }
    default:
      if (command.startsWith("-")) {
        throw new UsageError(`unknown option ${JSON.stringify(command)}`, {
          word: command,
          candidates: ["--help", "--version"],
        });
      }
      throw unknownCommand(command, COMMANDS);
  }
}

const argv = process.argv.slice(2);
if (argv[0] !== "serve") {
  // `herd status | head -1`: once the reader has gone, nobody wants the rest, and that is no
  // failure. (The daemon keeps its own course: its shutdown must still stop every worker.)
  process.stdout.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code !== "EPIPE") throw err;
    process.exit(0);
  });
  // A closed stderr leaves the exit status to tell the failure.
  process.stderr.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code !== "EPIPE") throw err;
  });
}

try {
  process.exitCode = await run(argv);
} catch (err) {
  if (err instanceof UsageError) {
    fail(`${await describeUsageError(err)}\nherd: run \`herd --help\` for usage`);
    process.exitCode = 2;
  } else {
    fail(`unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exitCode = 1;
  }
}
