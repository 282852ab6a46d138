// The per-pool report of what containment its workers got: one row per isolation key, each
// either the strongest (`full`), weakened by the config (`weakened`: the note says what such a
// worker can then reach), or less than asked for by default because the host could not
// (`unavailable`: the note says why, and what the worker can reach). The daemon logs it at start,
// GetStats and `herd status` show it. The network row reports what an unset `network` resolved
// to (egress, else private, else host: host-support.ts) and why it got less. Pure functions.

import type { ContainmentRow, IsolationOptions } from "../core/index.ts";
import type { IsolationKey } from "./host-support.ts";

export interface ContainmentInput {
  /** As configured (`default` where the config says nothing). */
  requested: IsolationOptions;
  /** What the host gave: no `default` left. */
  resolved: IsolationOptions;
  /** Why a `default` key resolved to less than the strongest. */
  fallbacks: Partial<Record<IsolationKey, string>>;
  /** Workers run inside bubblewrap (namespaces, seccomp); false: process tree only. */
  sandboxed: boolean;
  /** Why the kernel surface is not narrowed (no filter for this machine), if so. */
  seccompMissing?: string;
  daemonUid: number;
  /** The size bound of each private tmpfs, for the report. */
  tmpfsBytes: number;
  /** network: egress: what the pool's filter gives (its allow/deny lists, its resolvers). */
  egress?: string;
}

type RowMaker = (input: ContainmentInput) => ContainmentRow;

function row(
  input: ContainmentInput,
  key: IsolationKey,
  got: string,
  strongest: boolean,
  reach: string,
): ContainmentRow {
  if (strongest) return { key, got, state: "full", note: "" };
  const fallback = input.fallbacks[key];
  return fallback
    ? { key, got, state: "unavailable", note: `${fallback}; so ${reach}` }
    : { key, got, state: "weakened", note: reach };
}

const user: RowMaker = (input) => {
  const u = input.resolved.user;
  const [first, last] = input.resolved.uidRange;
  if (u === "auto")
    return row(input, "user", `auto (a uid of its own from ${first}-${last})`, true, "");
  if (u === "inherit" || u === "default") {
    const daemon =
      input.daemonUid === 0
        ? "root, beside the daemon: it can read and write every file of the host, the daemon's code, config and state included"
        : `the daemon's uid ${input.daemonUid}: it can read and write the daemon's own files (its code, config, state)`;
    const procs = input.sandboxed
      ? ""
      : ", and signal and trace the daemon's processes and every other worker";
    return row(input, "user", "inherit", false, `a worker runs as ${daemon}${procs}`);
  }
  const who = "uid" in u ? `uid ${u.uid}` : `user ${u.name}`;
  return row(
    input,
    "user",
    who,
    false,
    `every worker of the pool runs as ${who}: they can read and write each other's files`,
  );
};

const filesystem: RowMaker = (input) => {
  const mib = Math.round(input.tmpfsBytes / 2 ** 20);
  if (input.resolved.filesystem === "private") {
    return row(
      input,
      "filesystem",
      `private (own /tmp, /var/tmp, /dev/shm up to ${mib} MiB each, /run/lock and HOME; the daemon's config, sockets and other workers hidden)`,
      true,
      "",
    );
  }
  const shm = input.sandboxed ? "" : ", /dev/shm";
  return row(
    input,
    "filesystem",
    input.sandboxed ? "host (own HOME and /dev/shm)" : "host",
    false,
    `a worker shares the host's /tmp, /var/tmp, /run/lock${shm} with other programs (what it leaves there outlives it) and reads every file its uid may`,
  );
};

const network: RowMaker = (input) => {
  const net = input.resolved.network;
  if (net === "egress") {
    const got = input.egress ?? "egress (own namespace, out to the internet only)";
    return row(input, "network", got.replace(/^network: /, ""), true, "");
  }
  if (net === "private") {
    // Stronger than egress (no route out), but less than a pool that said nothing asked for.
    return row(
      input,
      "network",
      "private (own namespace, no route out, reached through a relay socket)",
      input.fallbacks.network === undefined,
      "a worker reaches nothing outside its namespace (the internet neither)",
    );
  }
  return row(
    input,
    "network",
    "host",
    false,
    "a worker shares the host's network: it reaches every loopback listener (the data plane; the control plane too when it runs as the daemon's uid, which only control.token stops), other workers' ports, abstract Unix sockets, and anything the host reaches",
  );
};

const kernel = (input: ContainmentInput): ContainmentRow => {
  if (!input.sandboxed) {
    return {
      key: "kernel",
      got: "host",
      state: input.fallbacks.filesystem || input.fallbacks.user ? "unavailable" : "weakened",
      note: "no sandbox: a worker can create user namespaces (with full capabilities inside) and reaches every syscall",
    };
  }
  if (input.seccompMissing) {
    return {
      key: "kernel",
      got: "no new privileges, PID/IPC/UTS namespaces",
      state: "unavailable",
      note: `${input.seccompMissing}; so a worker can create user namespaces and reaches every syscall`,
    };
  }
  return {
    key: "kernel",
    got: "seccomp filter (no user namespaces, mount, keyring, bpf, io_uring), no new privileges, PID/IPC/UTS namespaces",
    state: "full",
    note: "",
  };
};

const ROWS: readonly RowMaker[] = [user, filesystem, network, kernel];

export function containmentRows(input: ContainmentInput): ContainmentRow[] {
  return ROWS.map((make) => make(input));
}
