// Child processes whose output a test reads: stdout and stderr are collected as text, and the
// exit is reported only once both pipes have closed, so the output is complete by then.

import { type ChildProcess, spawn } from "node:child_process";

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface Finished extends Exit {
  stdout: string;
  stderr: string;
}

export interface Captured {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves once the process has exited and its pipes have closed; rejects if it never ran. */
  exited: Promise<Exit>;
}

export interface CaptureOptions {
  /** Merged over this process's environment. */
  env?: Record<string, string>;
  cwd?: string;
  /** In its own process group (the caller can signal the whole group). */
  detached?: boolean;
}

export function spawnCaptured(
  command: string,
  args: readonly string[],
  { env = {}, cwd, detached = false }: CaptureOptions = {},
): Captured {
  const child = spawn(command, args, {
    cwd,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
    detached,
  });
  let out = "";
  let err = "";
  child.stdout!.setEncoding("utf8").on("data", (d: string) => {
    out += d;
  });
  child.stderr!.setEncoding("utf8").on("data", (d: string) => {
    err += d;
  });
  const exited = new Promise<Exit>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code, signal) => resolve({ code, signal }));
  });
  return { child, stdout: () => out, stderr: () => err, exited };
}

/** Runs a command to its end and returns its exit and its whole output. */
export async function runCaptured(
  command: string,
  args: readonly string[],
  opts?: CaptureOptions,
): Promise<Finished> {
  const run = spawnCaptured(command, args, opts);
  const exit = await run.exited;
  return { ...exit, stdout: run.stdout(), stderr: run.stderr() };
}
