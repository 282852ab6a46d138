// Entry point of the `herd` command (bin/herd runs it): parses the command line, runs one
// command, and turns every failure into one line on stderr and an exit status. Each command's
// module is imported only when that command runs: loading the client, the config schema and
// the server for every invocation made `herd --version` take a second.

import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { USAGE } from "./usage.ts";

class UsageError extends Error {}

const out = (text: string) => process.stdout.write(`${text}\n`);
/** One line per problem, each prefixed "herd: " except `file:line:col:` lines (for editors). */
const fail = (text: string) =>
  process.stderr.write(
    `${text
      .split("\n")
      .map((l) => (l.startsWith("herd: ") || /^\S+:\d+:\d+: /.test(l) ? l : `herd: ${l}`))
      .join("\n")}\n`,
  );

const CLIENT_OPTIONS = {
  addr: { type: "string" },
  token: { type: "string" },
  json: { type: "boolean", default: false },
  pool: { type: "string" },
} as const;

/** parseArgs with its errors turned into usage errors, and at most `positionals` operands. */
function parsed<T extends { positionals: string[] }>(positionals: number, run: () => T): T {
  let r: T;
  try {
    r = run();
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (r.positionals.length > positionals) {
    throw new UsageError(`unexpected argument ${JSON.stringify(r.positionals[positionals])}`);
  }
  return r;
}

/** herd's own package.json: the nearest one above this file, which runs from src/cli in a
 * checkout under tsx and from dist/src/cli once compiled (dist/ has no package.json). */
function version(): string {
  for (let dir = new URL(".", import.meta.url); ; dir = new URL("..", dir)) {
    try {
      const pkg = JSON.parse(readFileSync(new URL("package.json", dir), "utf8")) as {
        version: string;
      };
      return `herd ${pkg.version}`;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT" || dir.pathname === "/") throw err;
    }
  }
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
    case "version":
      out(version());
      return 0;
    case "serve": {
      const { values } = parsed(0, () =>
        parseArgs({
          args: rest,
          options: { config: { type: "string", short: "c" }, "log-level": { type: "string" } },
        }),
      );
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
        fail,
        started,
      });
      // Everything is closed by now; a straggling keep-alive timer must not delay the exit.
      return process.exit(code);
    }
    case "config": {
      const [sub, ...args] = rest;
      if (sub !== "check")
        throw new UsageError(
          `unknown command "config ${sub ?? ""}"; did you mean "config check FILE"?`,
        );
      const { positionals } = parsed(1, () => parseArgs({ args, allowPositionals: true }));
      if (positionals[0] === undefined) throw new UsageError("config check needs a FILE");
      const { configCheck } = await import("./config-check.ts");
      return configCheck(positionals[0], out, fail);
    }
    case "status":
    case "sessions": {
      const { values } = parsed(0, () => parseArgs({ args: rest, options: CLIENT_OPTIONS }));
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
      if (sub !== "status") throw new UsageError("usage: herd cluster status [--pool P] [--json]");
      const { values } = parsed(0, () => parseArgs({ args, options: CLIENT_OPTIONS }));
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
      const { values } = parsed(0, () =>
        parseArgs({
          args: rest,
          options: {
            addr: CLIENT_OPTIONS.addr,
            token: CLIENT_OPTIONS.token,
            json: CLIENT_OPTIONS.json,
            "no-wait": { type: "boolean", default: false },
          },
        }),
      );
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
    case "watch": {
      const { values } = parsed(0, () =>
        parseArgs({
          args: rest,
          options: {
            ...CLIENT_OPTIONS,
            session: { type: "string" },
            snapshot: { type: "boolean", default: false },
            since: { type: "string" },
            count: { type: "string" },
          },
        }),
      );
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
    default:
      throw new UsageError(`unknown command ${JSON.stringify(command)}`);
  }
}

try {
  process.exitCode = await run(process.argv.slice(2));
} catch (err) {
  if (err instanceof UsageError) {
    fail(`${err.message}\nherd: run \`herd --help\` for usage`);
    process.exitCode = 2;
  } else {
    fail(`unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exitCode = 1;
  }
}
