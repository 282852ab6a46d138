// The daemon's logger: pino, JSON lines on stdout by default (for journald, Docker, log
// shippers); `log.format: pretty` prints one readable line per record for people instead.

import { type Logger as PinoLogger, pino } from "pino";
import type { LogLevel } from "../config/index.ts";
import { LineBatcher } from "./line-batcher.ts";

const LEVEL_NAMES: Readonly<Record<number, string>> = {
  10: "TRACE",
  20: "DEBUG",
  30: "INFO ",
  40: "WARN ",
  50: "ERROR",
  60: "FATAL",
};

/** `12:00:01.123 INFO  session acquired pool=demo session=abc worker=demo-1` */
export function prettyLine(json: string): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const { level, time, msg, hostname: _host, ...fields } = rec;
  const when = new Date(typeof time === "number" ? time : Date.now()).toISOString().slice(11, 23);
  const extra = Object.entries(fields)
    .map(([k, v]) => `${k}=${typeof v === "string" && !/\s/.test(v) ? v : JSON.stringify(v)}`)
    .join(" ");
  return `${when} ${LEVEL_NAMES[level as number] ?? String(level)} ${String(msg ?? "")}${extra ? ` ${extra}` : ""}\n`;
}

export function createLogger(
  opts: { level: LogLevel; format: "json" | "pretty" },
  out: NodeJS.WritableStream = process.stdout,
): PinoLogger {
  // No `pid` in the base: the pool logs worker pids under that key.
  const options = { level: opts.level, base: undefined };
  if (opts.format === "json") {
    // One write per turn of the event loop, not per line (line-batcher.ts); the rest at exit.
    const stdout = new LineBatcher(1);
    process.once("exit", () => stdout.flush());
    return pino(options, stdout);
  }
  return pino(options, { write: (line: string) => out.write(prettyLine(line)) });
}
