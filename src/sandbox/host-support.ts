// Can this host contain a pool's workers the way its `isolation` asks? An explicit key is a
// check that either passes or names the config key and the reason, so a pool never runs less
// contained than configured. A `default` key is resolved here to the strongest the host gives
// (`resolveDefaults`), with the reason when that is less than the strongest. Used twice: by the
// config loader (to point at file:line:col) and by the launcher when a pool starts (for callers
// that build pools in code). The host probes (tools, a trial sandbox) run once per process.

import { execFileSync } from "node:child_process";
import { readFileSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { builtNativeRelay, type IsolationOptions } from "../core/index.ts";
import { which } from "../pool/index.ts";
import type { RelayTool } from "./bwrap-argv.ts";
import { chooseNetwork, egressProblem, type NetworkChoice } from "./egress/index.ts";
import { seccompFilter } from "./seccomp.ts";

export type IsolationKey = "user" | "uid_range" | "network" | "filesystem";

export interface IsolationProblem {
  key: IsolationKey;
  message: string;
}

export interface SandboxTools {
  bwrap?: string;
  /** The relay into a private network namespace: the native relay if built, else socat. */
  relay?: RelayTool;
  setpriv?: string;
  nsenter?: string;
}

let tools: SandboxTools | undefined;

export function sandboxTools(): SandboxTools {
  tools ??= {
    bwrap: which("bwrap"),
    relay: relayTool(builtNativeRelay(), which("socat")),
    setpriv: which("setpriv"),
    nsenter: which("nsenter"),
  };
  return tools;
}

function relayTool(native: string | undefined, socat: string | undefined): RelayTool | undefined {
  if (native) return { kind: "native", path: native };
  return socat ? { kind: "socat", path: socat } : undefined;
}

/** socat as the relay (the fallback), from PATH when there. */
export function socatRelay(): RelayTool {
  return { kind: "socat", path: which("socat") ?? "socat" };
}

const NO_RELAY =
  "herd's native relay (scripts/setup-native.sh, which needs cc) or socat (apt-get install socat)";

/** Who the workers run as; `perWorker`: a fresh uid from the range for each. */
export type WorkerIdentity = { perWorker: true } | { perWorker: false; uid: number; gid: number };

/** Resolves `user` against /etc/passwd; a bare uid without an entry gets gid = uid. */
export function workerIdentity(user: IsolationOptions["user"]): WorkerIdentity | string {
  if (user === "default") return "unresolved user: default (resolveDefaults first)";
  if (user === "auto") return { perWorker: true };
  if (user === "inherit") {
    return { perWorker: false, uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
  }
  let passwd: string[][] = [];
  try {
    passwd = readFileSync("/etc/passwd", "utf8")
      .split("\n")
      .map((l) => l.split(":"));
  } catch {}
  const entry =
    "uid" in user
      ? passwd.find((f) => Number(f[2]) === user.uid && f[2] !== "")
      : passwd.find((f) => f[0] === user.name);
  if (entry) return { perWorker: false, uid: Number(entry[2]), gid: Number(entry[3]) };
  if ("uid" in user) return { perWorker: false, uid: user.uid, gid: user.uid };
  return `no user named ${JSON.stringify(user.name)} on this host (/etc/passwd)`;
}

/** The first key that makes the pool need a sandbox, to blame host-wide failures on. */
function leadKey(isolation: IsolationOptions): IsolationKey {
  if (isolation.network !== "host") return "network";
  if (isolation.filesystem !== "host") return "filesystem";
  return "user";
}

/**
 * The pool's isolation with every `default` key (and an unset `network`, `auto`) replaced by the
 * strongest this host gives, and for each key resolved to less, why (the reason the contract's
 * report carries).
 */
export function resolveDefaults(
  isolation: IsolationOptions,
  /** The pool's cwd and the absolute paths of its command: what a worker uid must read. */
  code: readonly string[] = [],
): {
  isolation: IsolationOptions;
  fallbacks: Partial<Record<IsolationKey, string>>;
} {
  const fallbacks: Partial<Record<IsolationKey, string>> = {};
  const resolved = { ...isolation };
  const daemonUid = process.getuid?.() ?? 0;
  const found = sandboxTools();
  const sandboxRefused = () =>
    !found.bwrap
      ? "bubblewrap (bwrap) is not on PATH (apt-get install bubblewrap)"
      : trialRun(found.bwrap, isolation.network === "private");
  if (resolved.user === "default") {
    const why =
      daemonUid !== 0
        ? `the daemon runs as uid ${daemonUid}, not root, so it cannot give workers uids of their own`
        : !found.setpriv
          ? "util-linux setpriv is not on PATH"
          : (sandboxRefused() ?? unreadableByOthers(code));
    resolved.user = why ? "inherit" : "auto";
    if (why) fallbacks.user = why;
  }
  if (resolved.filesystem === "default") {
    const asRoot = resolved.user === "inherit" && daemonUid === 0;
    const why =
      sandboxRefused() ??
      (asRoot ? "workers run as root, who can undo mount namespaces" : undefined);
    resolved.filesystem = why ? "host" : "private";
    if (why) fallbacks.filesystem = why;
  }
  if (resolved.network === "auto") {
    const choice = poolNetwork(resolved);
    resolved.network = choice.mode;
    if (choice.fallback) fallbacks.network = choice.fallback;
  }
  return { isolation: resolved, fallbacks };
}

/**
 * Problems with the pool's isolation on this host; empty means it can be given. A `default` key
 * or an unset `network` is judged as what it resolves to here, which the host can always give.
 */
export function isolationProblems(requested: IsolationOptions): IsolationProblem[] {
  const problems: IsolationProblem[] = [];
  const isolation = resolveDefaults(requested).isolation;
  const contained =
    isolation.user !== "inherit" || isolation.network !== "host" || isolation.filesystem !== "host";
  if (!contained) return problems;
  const found = sandboxTools();
  const identity = workerIdentity(isolation.user);
  const daemonUid = process.getuid?.() ?? 0;
  if (typeof identity === "string") {
    problems.push({ key: "user", message: identity });
    return problems;
  }
  const switches = identity.perWorker || identity.uid !== daemonUid;
  if (switches && daemonUid !== 0) {
    problems.push({
      key: "user",
      message: `running workers under ${identity.perWorker ? "uids of their own" : `uid ${identity.uid}`} needs the daemon to run as root (it runs as uid ${daemonUid})`,
    });
  }
  if (switches && !found.setpriv) {
    problems.push({ key: "user", message: "switching uids needs util-linux setpriv on PATH" });
  }
  if (identity.perWorker) {
    const [first] = isolation.uidRange;
    if (first < 1000) {
      problems.push({
        key: "uid_range",
        message: `starts at ${first}: uids below 1000 belong to the system; use a range like 200000-265535`,
      });
    }
  }
  // Root keeps every capability inside the namespaces bwrap makes and could undo them (mount,
  // setns through /proc, open another worker's relay socket): only non-root workers get them.
  const root = !identity.perWorker && identity.uid === 0;
  for (const key of ["network", "filesystem"] as const) {
    const value = isolation[key];
    if ((value === "private" || value === "egress") && root) {
      problems.push({
        key,
        message: `${key}: ${value} cannot contain a worker running as root (root can undo namespaces and mounts); set isolation.user: auto`,
      });
    }
  }
  if (!found.bwrap) {
    problems.push({
      key: leadKey(isolation),
      message: "needs bubblewrap (bwrap) on PATH: apt-get install bubblewrap",
    });
  }
  if ((isolation.network === "private" || isolation.network === "egress") && !found.relay) {
    problems.push({
      key: "network",
      message: `network: ${isolation.network} needs a relay into the namespace: ${NO_RELAY}`,
    });
  }
  if (isolation.network === "egress") {
    const refused = egressProblem();
    if (refused) problems.push({ key: "network", message: refused });
  }
  if (problems.length === 0) {
    const refused = trialRun(found.bwrap!, isolation.network === "private");
    if (refused) problems.push({ key: leadKey(isolation), message: refused });
  }
  return problems;
}

/**
 * Why a uid of the worker's own could not run the pool's code (a checkout under /root, a
 * 0700 temp dir), or undefined: each directory on the way must let others pass (o+x).
 */
function unreadableByOthers(paths: readonly string[]): string | undefined {
  for (const path of paths) {
    let start = dirname(path);
    try {
      if (statSync(path).isDirectory()) start = path;
    } catch {}
    for (let dir = start; ; dir = dirname(dir)) {
      let mode: number;
      try {
        mode = statSync(dir).mode;
      } catch {
        break; // a path that does not exist is the command's own problem, reported elsewhere
      }
      if ((mode & 0o001) === 0) {
        return `the pool's code at ${path} is out of other users' reach (${dir} is mode ${(mode & 0o777).toString(8)}): move it or chmod o+x ${dir} to give workers uids of their own`;
      }
      if (dir === "/") break;
    }
  }
  return undefined;
}

const trials = new Map<boolean, string | undefined>();

/**
 * Makes the namespaces once with nothing in them, under the seccomp filter: does the kernel let
 * us? Remembered per process (a host does not change its mind between pools).
 */
function trialRun(bwrap: string, network: boolean): string | undefined {
  if (trials.has(network)) return trials.get(network);
  const args = ["--die-with-parent", "--unshare-pid", "--unshare-ipc", "--unshare-uts"];
  if (network) args.push("--unshare-net");
  args.push("--bind", "/", "/", "--dev", "/dev", "--proc", "/proc");
  const filter = seccompFilter();
  if (filter) args.push("--seccomp", "0");
  args.push("--", "/bin/true");
  let refused: string | undefined;
  try {
    execFileSync(bwrap, args, {
      input: filter ?? "",
      stdio: ["pipe", "ignore", "pipe"],
      timeout: 10_000,
    });
  } catch (err) {
    const stderr = String((err as { stderr?: Buffer }).stderr ?? "").trim();
    refused = `this host refuses the namespaces bubblewrap needs: ${stderr || (err as Error).message}`;
  }
  trials.set(network, refused);
  return refused;
}

/**
 * The network a pool's workers get: its `network`, or for `auto` the best this host can give
 * (egress; private where egress is unavailable; host where a worker runs as root, or there is
 * no bubblewrap or relay, or the kernel refuses a network namespace), with the reason it got less.
 */
function poolNetwork(isolation: IsolationOptions): NetworkChoice {
  if (isolation.network !== "auto") return chooseNetwork(isolation.network, undefined);
  const identity = workerIdentity(isolation.user);
  const root = typeof identity !== "string" && !identity.perWorker && identity.uid === 0;
  const { bwrap, relay } = sandboxTools();
  const privateProblem = root
    ? "a worker running as root can undo its namespaces (set isolation.user: auto)"
    : !bwrap
      ? "no bubblewrap (bwrap) on PATH"
      : !relay
        ? `no relay into the namespace: ${NO_RELAY}`
        : trialRun(bwrap, true);
  return chooseNetwork(isolation.network, privateProblem);
}
