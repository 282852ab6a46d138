// The environment a worker starts with: an allow-list, never the daemon's whole environment.
//
// A worker runs code herd's operator does not trust, and the daemon's environment is where
// operators keep secrets (the control token through `control.token_env`, cloud credentials).
// So a worker gets only what a program needs to run — PATH, HOME, LANG, LC_*, TZ, taken from
// the daemon where set — plus what its pool asks for by name (`env_passthrough`), the pool's own
// `env` and PORT. Later sources win: PORT over the pool's env over passthrough over the base
// list. A passthrough name the daemon does not have is simply absent (like any unset variable),
// so one config serves hosts with and without it. Pure function.

/** Names every worker inherits from the daemon where set (besides any `LC_*`). */
export const INHERITED_NAMES: readonly string[] = ["PATH", "HOME", "LANG", "TZ"];

function inherited(name: string): boolean {
  return INHERITED_NAMES.includes(name) || name.startsWith("LC_");
}

export interface WorkerEnvInput {
  /** The daemon's environment (process.env). */
  daemon: Readonly<Record<string, string | undefined>>;
  /** Names copied from the daemon's environment where set. */
  passthrough: readonly string[];
  /** The pool's `env`, templates already filled. */
  pool: Readonly<Record<string, string>>;
  port: string;
}

export function workerEnv(input: WorkerEnvInput): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(input.daemon)) {
    if (value !== undefined && inherited(name)) env[name] = value;
  }
  for (const name of input.passthrough) {
    const value = input.daemon[name];
    if (value !== undefined) env[name] = value;
  }
  Object.assign(env, input.pool);
  env.PORT = input.port;
  return env;
}
