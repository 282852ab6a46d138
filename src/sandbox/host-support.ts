// Can this host contain a pool's workers the way its `isolation` asks? Everything here is a
// check that either passes or names the config key and the reason, so a pool never runs less
// contained than configured. Used twice: by the config loader (to point at file:line:col) and
// by the launcher when a pool starts (for callers that build pools in code).

import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import type { IsolationOptions } from "../core/index.ts";
import { which } from "../pool/index.ts";

export type IsolationKey = "user" | "uid_range" | "network" | "filesystem";

export interface IsolationProblem {
  key: IsolationKey;
  message: string;
}

export interface SandboxTools {
  bwrap?: string;
  socat?: string;
  setpriv?: string;
}

let tools: SandboxTools | undefined;

export function sandboxTools(): SandboxTools {
  tools ??= { bwrap: which("bwrap"), socat: which("socat"), setpriv: which("setpriv") };
  return tools;
}

/** Who the workers run as; `perWorker`: a fresh uid from the range for each. */
export type WorkerIdentity = { perWorker: true } | { perWorker: false; uid: number; gid: number };

/** Resolves `user` against /etc/passwd; a bare uid without an entry gets gid = uid. */
export function workerIdentity(user: IsolationOptions["user"]): WorkerIdentity | string {
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

/** Problems with the pool's isolation on this host; empty means it can be given. */
export function isolationProblems(isolation: IsolationOptions): IsolationProblem[] {
  const problems: IsolationProblem[] = [];
  const asked =
    isolation.user !== "inherit" || isolation.network !== "host" || isolation.filesystem !== "host";
  if (!asked) return problems;
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
    if (isolation[key] === "private" && root) {
      problems.push({
        key,
        message: `${key}: private cannot contain a worker running as root (root can undo namespaces and mounts); set isolation.user: auto`,
      });
    }
  }
  if (!found.bwrap) {
    problems.push({
      key: leadKey(isolation),
      message: "needs bubblewrap (bwrap) on PATH: apt-get install bubblewrap",
    });
  }
  if (isolation.network === "private" && !found.socat) {
    problems.push({
      key: "network",
      message: "network: private needs socat (the relay into the namespace): apt-get install socat",
    });
  }
  if (problems.length === 0) {
    const refused = trialRun(found.bwrap!, isolation.network === "private");
    if (refused) problems.push({ key: leadKey(isolation), message: refused });
  }
  return problems;
}

/** Makes the namespaces once with nothing in them: does the kernel let us? */
function trialRun(bwrap: string, network: boolean): string | undefined {
  const args = ["--die-with-parent", "--unshare-pid", "--unshare-ipc", "--unshare-uts"];
  if (network) args.push("--unshare-net");
  args.push("--bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--", "/bin/true");
  try {
    execFileSync(bwrap, args, { stdio: ["ignore", "ignore", "pipe"], timeout: 10_000 });
    return undefined;
  } catch (err) {
    const stderr = String((err as { stderr?: Buffer }).stderr ?? "").trim();
    return `this host refuses the namespaces bubblewrap needs: ${stderr || (err as Error).message}`;
  }
}
