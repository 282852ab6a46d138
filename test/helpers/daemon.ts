// Runs the real daemon (`node bin/herd serve --config FILE`) for end-to-end tests.
//
// The config is rewritten into a temp file with both planes on port 0 of loopback, and the
// daemon's own "herd is ready" log line says which ports it bound: a port picked by the test and
// bound later by the daemon could be taken in between by another test's daemon, whose /healthz
// would then answer for ours. Pools keep resolving `cwd` against the
// ORIGINAL file's directory (the loader resolves relative cwds against the config file, and
// the copy lives elsewhere). The daemon runs in its own process group, carrying the caller's
// leak tag; workers get a clean environment, so every pool of the copy lists the tag in
// `env_passthrough` and expectNoLeaks() can still prove they all died.
// A cluster node must be given real ports (it advertises them before it binds): those are
// picked here, and a daemon that lost one to another process in between is started again on
// fresh ones (up to PORT_RACE_ATTEMPTS times); ports the caller names are never retried.
// Each Daemon belongs to one test, which must stop() or kill() it.
import type { ChildProcess } from "node:child_process";
import { chownSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { get } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { parse, stringify } from "yaml";
import { type Exit, spawnCaptured } from "./captured.ts";
import { freePort } from "./ports.ts";
import { LEAK_TAG_VAR } from "./processes.ts";

export const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const HERD_BIN = join(REPO_ROOT, "bin/herd");

export interface Daemon {
  child: ChildProcess;
  pid: number;
  /** http://127.0.0.1:PORT of the control plane (Connect, gRPC, /healthz, /metrics). */
  controlUrl: string;
  /** http://127.0.0.1:PORT of the data plane. */
  dataUrl: string;
  /** Path of the rewritten config the daemon runs on. */
  configFile: string;
  stdout(): string;
  stderr(): string;
  exited: Promise<Exit>;
  /**
   * SIGTERM, SIGKILL after graceMs (default 15 s, under the daemon's own 20 s shutdown cap);
   * resolves with how it exited — `{ code: 0, signal: null }` for a clean shutdown.
   */
  stop(graceMs?: number): Promise<Exit>;
  /** SIGKILL the daemon alone (not its workers): the crash the orphan guarantees are about. */
  kill(): Promise<void>;
}

export interface StartDaemonOptions {
  /** A herd.yaml path, or the config itself as an object (pools' relative cwd → REPO_ROOT). */
  config: string | Record<string, unknown>;
  /** Extra env, e.g. the leak tag: `newLeakTag().env`. */
  env?: Record<string, string>;
  /** Extra arguments after `serve --config FILE`. */
  args?: string[];
  /** The `herd` command to run (default: this checkout's `node bin/herd`), e.g. an installed
   * package's `npx herd`, and the directory to run it in (default: REPO_ROOT). */
  command?: readonly string[];
  cwd?: string;
  readyTimeoutMs?: number;
  /** Listen on these ports instead of fresh ones: a restart where clients expect the daemon. */
  ports?: { control: number; data: number };
  /** Run the daemon as this unprivileged uid (setpriv; the test runs as root). */
  uid?: number;
  /** Start the daemon in this cgroup v2 directory (one delegated to `uid`), before setpriv. */
  cgroup?: string;
}

type Doc = Record<string, unknown> & { workers?: Record<string, Record<string, unknown>> };

function passLeakTag(pool: Record<string, unknown>): void {
  const listed = Array.isArray(pool.env_passthrough) ? (pool.env_passthrough as unknown[]) : [];
  if (!listed.includes(LEAK_TAG_VAR)) pool.env_passthrough = [...listed, LEAK_TAG_VAR];
}

function loadDoc(config: StartDaemonOptions["config"]): { doc: Doc; baseDir: string } {
  if (typeof config === "string") {
    const file = resolve(config);
    return { doc: (parse(readFileSync(file, "utf8")) ?? {}) as Doc, baseDir: dirname(file) };
  }
  return { doc: structuredClone(config) as Doc, baseDir: REPO_ROOT };
}

/** One GET /healthz on a fresh connection that is closed after: a pooled keep-alive socket
 * left behind by the probe would make every test's shutdown wait on it. */
function healthz(controlUrl: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = get(`${controlUrl}/healthz`, { agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on("error", () => resolve(false));
  });
}

/** The planes' URLs from the daemon's JSON "herd is ready" line, once it has been logged. */
function readyUrls(stdout: string): { control: string; data: string } | undefined {
  for (const line of stdout.split("\n")) {
    if (!line.includes('"herd is ready"')) continue;
    const entry = JSON.parse(line) as { control?: string; data?: string };
    if (entry.control && entry.data) return { control: entry.control, data: entry.data };
  }
  return undefined;
}

/**
 * Starts the daemon and resolves once it has logged that it is ready and GET /healthz on its
 * control port answers 200.
 */
export async function startDaemon(opts: StartDaemonOptions): Promise<Daemon> {
  if (opts.ports !== undefined || loadDoc(opts.config).doc.cluster === undefined) {
    return launchDaemon(opts, opts.ports);
  }
  for (let attempt = 1; ; attempt++) {
    const ports = { control: await freePort(), data: await freePort() };
    try {
      return await launchDaemon(opts, ports);
    } catch (err) {
      if (!(err instanceof PortTakenError) || attempt === PORT_RACE_ATTEMPTS) throw err;
    }
  }
}

const PORT_RACE_ATTEMPTS = 3;

/** The daemon exited at start because a port picked for it was bound by then. */
class PortTakenError extends Error {}

async function launchDaemon(
  opts: StartDaemonOptions,
  ports: { control: number; data: number } | undefined,
): Promise<Daemon> {
  const { doc, baseDir } = loadDoc(opts.config);
  doc.control = { ...(doc.control as object), listen: `127.0.0.1:${ports?.control ?? 0}` };
  doc.data = { ...(doc.data as object), listen: `127.0.0.1:${ports?.data ?? 0}` };
  // stop() means "stop now" (as before drains existed): a test of draining sets its own.
  if (doc.drain_timeout === undefined) doc.drain_timeout = "0s";
  // The ready line carries the bound ports; it is logged at info, in JSON.
  const log = { ...(doc.log as object) } as { level?: string; format?: string };
  if (!["info", "debug", "trace"].includes(log.level ?? "info")) log.level = "info";
  doc.log = { ...log, format: "json" };
  for (const pool of Object.values(doc.workers ?? {})) {
    pool.cwd = resolve(baseDir, typeof pool.cwd === "string" ? pool.cwd : ".");
    // Workers get a clean environment: the leak tag reaches them only when asked for.
    if (opts.env?.[LEAK_TAG_VAR] !== undefined) passLeakTag(pool);
  }
  const dir = mkdtempSync(join(tmpdir(), "herd-test-"));
  const configFile = join(dir, "herd.yaml");
  writeFileSync(configFile, stringify(doc));

  if (opts.uid !== undefined) chownSync(dir, opts.uid, opts.uid);
  const asUser =
    opts.uid === undefined
      ? []
      : [
          "setpriv",
          "--reuid",
          String(opts.uid),
          "--regid",
          String(opts.uid),
          "--clear-groups",
          "--",
        ];
  const inCgroup =
    opts.cgroup === undefined
      ? []
      : ["/bin/sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', opts.cgroup];
  const [command, ...commandArgs] = [
    ...inCgroup,
    ...asUser,
    ...(opts.command ?? [process.execPath, HERD_BIN]),
  ];
  const run = spawnCaptured(
    command!,
    [...commandArgs, "serve", "--config", configFile, ...(opts.args ?? [])],
    { cwd: opts.cwd ?? REPO_ROOT, env: opts.env, detached: true },
  );
  const { child, stdout, stderr } = run;
  const exited = run.exited.then((exit) => {
    rmSync(dir, { recursive: true, force: true });
    return exit;
  });
  const running = () => child.exitCode === null && child.signalCode === null;
  const stop = async (graceMs = 15_000) => {
    if (running()) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      await exited;
      clearTimeout(timer);
    }
    return exited;
  };
  const kill = async () => {
    if (running()) child.kill("SIGKILL");
    await exited;
  };
  const daemon: Daemon = {
    child,
    pid: child.pid!,
    controlUrl: "",
    dataUrl: "",
    configFile,
    stdout,
    stderr,
    exited,
    stop,
    kill,
  };

  const timeoutMs = opts.readyTimeoutMs ?? 60_000;
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!running()) {
      const { code, signal } = await exited;
      const Failure = /is already in use \((control|data)\.listen/.test(stderr())
        ? PortTakenError
        : Error;
      throw new Failure(
        `herd serve exited before ready (code ${code}, signal ${signal})\nstderr:\n${stderr()}\nstdout:\n${stdout()}`,
      );
    }
    const urls = readyUrls(stdout());
    if (urls && (await healthz(urls.control))) {
      daemon.controlUrl = urls.control;
      daemon.dataUrl = urls.data;
      return daemon;
    }
    await sleep(20);
  }
  await kill();
  throw new Error(
    `herd serve not healthy within ${timeoutMs} ms\nstderr:\n${stderr()}\nstdout:\n${stdout()}`,
  );
}
