// The HTTP load generator: Debian's wrk (scripts/setup-bench.sh), a C event loop with
// microsecond latency histograms, far cheaper per request than a Node client sharing the
// machine's two cores with the proxy it measures. A Lua script prints the summary as one JSON
// line; with `sessionPerConnection` every connection is its own thread carrying its own
// X-Session-ID (wrk's Lua state is per thread, and its request headers are too: request()
// does not know which connection it builds for, so there is no per-connection header on
// fewer threads).
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface WrkOptions {
  seconds: number;
  connections: number;
  headers?: Record<string, string>;
  /** Connection i sends `X-Session-ID: <prefix>-<i>` (one wrk thread per connection). */
  sessionPerConnection?: string;
  /** wrk threads (default 1; one per connection with `sessionPerConnection`). */
  threads?: number;
}

export interface WrkResult {
  requests: number;
  rps: number;
  /** Latency percentiles in microseconds. */
  p50: number;
  p99: number;
  /** Socket errors (connect, read, write, timeout) and non-2xx/3xx answers. */
  errors: number;
}

const SCRIPT = `
local next_id = 0
function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
end
function init(args)
  if session_prefix ~= nil then
    wrk.headers["X-Session-ID"] = session_prefix .. "-" .. id
  end
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK {"requests":%d,"us":%d,"errors":%d,"p50":%d,"p99":%d}\\n',
    summary.requests, summary.duration,
    e.connect + e.read + e.write + e.timeout + e.status,
    latency:percentile(50), latency:percentile(99)))
end
`;

export function wrk(url: string, opts: WrkOptions): Promise<WrkResult> {
  const dir = mkdtempSync(join(tmpdir(), "herd-bench-wrk-"));
  const prefix = opts.sessionPerConnection;
  const script = join(dir, "summary.lua");
  writeFileSync(
    script,
    (prefix === undefined ? "" : `session_prefix = ${JSON.stringify(prefix)}\n`) + SCRIPT,
  );
  const threads = prefix === undefined ? (opts.threads ?? 1) : opts.connections;
  const args = [
    `-t${threads}`,
    `-c${opts.connections}`,
    `-d${opts.seconds}s`,
    "--timeout",
    "10s",
    "-s",
    script,
    ...Object.entries(opts.headers ?? {}).flatMap(([k, v]) => ["-H", `${k}: ${v}`]),
    url,
  ];
  return new Promise((resolve, reject) => {
    execFile("wrk", args, { encoding: "utf8" }, (err, stdout, stderr) => {
      rmSync(dir, { recursive: true, force: true });
      if (err) return reject(new Error(`wrk ${args.join(" ")}: ${err.message}\n${stderr}`));
      const line = /^WRK (.*)$/m.exec(stdout)?.[1];
      if (!line) return reject(new Error(`wrk printed no summary:\n${stdout}${stderr}`));
      const s = JSON.parse(line) as Record<string, number>;
      resolve({
        requests: s.requests!,
        rps: s.requests! / (s.us! / 1e6),
        p50: s.p50!,
        p99: s.p99!,
        errors: s.errors!,
      });
    });
  });
}
