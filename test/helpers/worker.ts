// Starts test/fixtures/worker.mjs directly (without herd) and waits for its `ready <port>`
// line, in its own process group (pgid = pid). Each started worker belongs to the caller, who must stop() it; the leak tag passed in
// env lets expectNoLeaks() prove the worker and everything it spawned are gone.
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

export const WORKER_FIXTURE = fileURLToPath(new URL("../fixtures/worker.mjs", import.meta.url));

export interface FixtureWorker {
  child: ChildProcess;
  pid: number;
  port: number;
  url: string;
  /** Everything the worker wrote to stderr so far. */
  stderr(): string;
  /** Resolves with the exit code / signal once the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM, then SIGKILL after graceMs; resolves when the process has exited. */
  stop(graceMs?: number): Promise<void>;
}

export interface StartWorkerOptions {
  env?: Record<string, string>;
  args?: string[];
  /** Port to pass as PORT; default 0 (the worker picks and reports one). */
  port?: number;
  /** Wait for the ready line at most this long. */
  readyTimeoutMs?: number;
}

/** Spawns the worker; resolves once it printed `ready <port>`, rejects if it exits first. */
export function startWorker(opts: StartWorkerOptions = {}): Promise<FixtureWorker> {
  const child = spawn(process.execPath, [WORKER_FIXTURE, ...(opts.args ?? [])], {
    env: { ...process.env, PORT: String(opts.port ?? 0), ...opts.env },
    stdio: ["ignore", "pipe", "pipe"],
    // Its own process group, as herd gives every worker: a test may kill the group without
    // taking the test runner with it.
    detached: true,
  });
  let err = "";
  child.stderr!.setEncoding("utf8").on("data", (d: string) => {
    err += d;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  const stop = async (graceMs = 2000) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    await exited;
    clearTimeout(timer);
  };
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`worker did not print ready within ${opts.readyTimeoutMs ?? 10_000} ms`));
    }, opts.readyTimeoutMs ?? 10_000);
    child.stdout!.setEncoding("utf8").on("data", (d: string) => {
      out += d;
      const m = /^ready (\d+)$/m.exec(out);
      if (!m) return;
      clearTimeout(timer);
      const port = Number(m[1]);
      resolve({
        child,
        pid: child.pid!,
        port,
        url: `http://127.0.0.1:${port}`,
        stderr: () => err,
        exited,
        stop,
      });
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`worker exited before ready (code ${code}, signal ${signal}): ${err}`));
    });
  });
}
