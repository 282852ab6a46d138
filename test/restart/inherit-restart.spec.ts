// `herd restart` with a pool whose sandboxed workers run as the daemon's own uid
// (`isolation.user: inherit`, a non-root daemon): only mount namespaces keep such a worker from
// the daemon's runtime directory (relay sockets, the control socket, the seccomp filter). Every
// generation's runtime directory lives under one parent that each worker's namespace hides
// (src/sandbox/runtime-dir.ts), so, paused at the last step of the hand-over (both daemons
// alive, both directories there): the handed worker reaches nothing of the successor's (its
// control socket, a new worker's relay, its files), and the successor's new worker nothing of
// the old daemon's. The restart keeps the worker (same pid).
//
// A non-root daemon needs a cgroup v2 of its own for a restart (the reaper's cgroup.kill): the
// test delegates one to the daemon's uid (systemd's Delegate=yes does the same) and starts the
// daemon in it.

import {
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { spawnCaptured } from "../helpers/captured.ts";
import { type Daemon, HERD_BIN, startDaemon } from "../helpers/daemon.ts";
import { newLeakTag, pidAlive } from "../helpers/processes.ts";
import { type Answer, ask, hostilePool } from "../security/isolation-harness.ts";
import {
  daemonPids,
  HAND_OVER_STEPS,
  stopEveryGeneration,
  until,
  workerPidOf,
} from "./restart-helpers.ts";

const CGROUP_V2 = existsSync("/sys/fs/cgroup/unified/cgroup.procs")
  ? "/sys/fs/cgroup/unified"
  : "/sys/fs/cgroup";
/** Every step before the successor serves. */
const STEPS = HAND_OVER_STEPS.filter((step) => step !== "new-serving");

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Asks the worker behind relay socket `relay` (the test runs as root: it may dial it). */
function viaRelay(relay: string, path: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: relay, path, agent: false, timeout: 30_000 }, (res) => {
      let body = "";
      res.setEncoding("utf8").on("data", (d: string) => {
        body += d;
      });
      res.on("end", () => resolve(JSON.parse(body) as Answer));
    });
    req.on("timeout", () => req.destroy(new Error(`${path}: timeout`)));
    req.on("error", reject);
    req.end();
  });
}

/** Removes a cgroup v2 subtree, deepest first (every process in it gone). */
function removeCgroup(dir: string): void {
  if (!existsSync(dir)) return;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) removeCgroup(join(dir, entry.name));
  }
  try {
    rmdirSync(dir);
  } catch {}
}

/** What worker `relay` can reach of `dir` (another generation's runtime directory). */
async function reaches(
  relay: string,
  dir: string,
  targets: { sockets: string[]; files: string[] },
) {
  const reached: string[] = [];
  const listing = await viaRelay(
    relay,
    `/run?argv=${encodeURIComponent(JSON.stringify(["ls", "-a", dir]))}`,
  );
  if (listing.ok) reached.push(`ls ${dir}: ${String(listing.output)}`);
  for (const path of targets.sockets) {
    if ((await viaRelay(relay, `/connect?path=${encodeURIComponent(path)}`)).ok) reached.push(path);
  }
  for (const path of targets.files) {
    if ((await viaRelay(relay, `/read?path=${encodeURIComponent(path)}`)).ok) reached.push(path);
  }
  return reached;
}

describe("herd restart with isolation.user: inherit (a non-root daemon)", () => {
  it("keeps the worker; no generation's worker reaches the other generation's runtime directory", async () => {
    const { tag, env } = newLeakTag();
    const uid = 244_000 + Math.floor(Math.random() * 1000);
    const dir = mkdtempSync(join(tmpdir(), "herd-inherit-restart-"));
    chownSync(dir, uid, uid);
    const hold = join(dir, "hold");
    mkdirSync(hold);
    chownSync(hold, uid, uid);
    const socket = join(dir, "ctl.sock");
    const cgroup = join(CGROUP_V2, `herd-test-${tag}`);
    mkdirSync(cgroup);
    for (const f of ["", "cgroup.procs", "cgroup.subtree_control", "cgroup.threads"]) {
      chownSync(join(cgroup, f), uid, uid);
    }
    let daemon: Daemon | undefined;
    cleanups.push(async () => {
      for (const step of [...STEPS, "new-serving"]) writeFileSync(join(hold, `${step}.go`), "");
      await stopEveryGeneration(tag, daemon);
      removeCgroup(cgroup);
      rmSync(dir, { recursive: true, force: true });
      // The uid's runtime parent (src/sandbox/runtime-dir.ts; this test's uid is its own): every
      // daemon removed its directory in it.
      const parent = join(tmpdir(), `herd-sandbox-u${uid}`);
      const left = existsSync(parent) ? readdirSync(parent) : [];
      rmSync(parent, { recursive: true, force: true });
      expect(left, "runtime directories left behind").toEqual([]);
    });
    daemon = await startDaemon({
      uid,
      cgroup,
      config: {
        drain_timeout: "30s",
        control: { socket },
        workers: {
          w: {
            ...hostilePool(env, { user: "inherit", network: "private", filesystem: "host" }),
            min: 1,
            max: 4,
          },
        },
      },
      env: { ...env, HERD_RESTART_HOLD: hold },
    });
    const old = daemon;
    const handed = await ask(old, "w", "handed", "/id");
    expect(handed.uid).toBe(uid);
    const hostPid = await until("the session's worker", () =>
      workerPidOf(old.controlUrl, "handed"),
    );
    const handedRelay = join(dirname(String(handed.home)), "relay", "http.sock");
    const parent = join(tmpdir(), `herd-sandbox-u${uid}`);
    const runtimeOf = (pid: number) =>
      until(`daemon ${pid}'s runtime directory`, () => {
        const name = readdirSync(parent).find((n) => n.startsWith(`${pid}-`));
        return name && join(parent, name);
      });
    const oldDir = await runtimeOf(old.pid);

    const run = spawnCaptured(process.execPath, [HERD_BIN, "restart", "--addr", old.controlUrl]);
    let exited = false;
    void run.exited.then(() => {
      exited = true;
    });
    for (const step of STEPS) {
      await until(`the restart to reach ${step}`, () => existsSync(join(hold, step)) || exited);
      expect(exited, run.stderr()).toBe(false);
      writeFileSync(join(hold, `${step}.go`), "");
    }
    // Paused before the successor says it serves: both daemons and both directories are there.
    await until(
      "the new process to reach new-serving",
      () => existsSync(join(hold, "new-serving")) || exited,
    );
    expect(exited, run.stderr()).toBe(false);
    const successor = (
      JSON.parse(readFileSync(join(hold, "new-serving"), "utf8")) as { pid: number }
    ).pid;
    const newDir = await runtimeOf(successor);
    // The successor's own warm worker (not the adopted one, whose directory is `a<n>`).
    const freshRelay = await until("a worker of the successor's", async () => {
      const pool = join(newDir, "1");
      for (const name of existsSync(pool) ? readdirSync(pool) : []) {
        const relay = join(pool, name, "relay", "http.sock");
        if (name.startsWith("a") || !existsSync(relay)) continue;
        try {
          if ((await viaRelay(relay, "/id")).uid === uid) return relay;
        } catch {}
      }
      return undefined;
    });
    const newFiles = {
      sockets: [join(newDir, "control.sock"), freshRelay],
      files: [join(newDir, "1", "seccomp.bpf")],
    };
    const oldFiles = {
      sockets: [join(oldDir, "control.sock")],
      files: [join(oldDir, "1", "seccomp.bpf")],
    };
    for (const path of [
      ...newFiles.sockets,
      ...newFiles.files,
      ...oldFiles.sockets,
      ...oldFiles.files,
    ]) {
      expect(existsSync(path), path).toBe(true);
    }
    // Each worker reaches its own relay's directory, and nothing of the other generation.
    expect((await viaRelay(handedRelay, "/id")).pid).toBe(handed.pid);
    expect(await reaches(handedRelay, newDir, newFiles)).toEqual([]);
    expect(await reaches(freshRelay, oldDir, oldFiles)).toEqual([]);

    writeFileSync(join(hold, "new-serving.go"), "");
    const exit = await run.exited;
    expect({ code: exit.code, stderr: run.stderr() }).toEqual({ code: 0, stderr: "" });
    await until("the old daemon to leave", () => (pidAlive(old.pid) ? undefined : true));
    expect(daemonPids(tag)).toEqual([successor]);
    // The same worker process answers the session, through the new daemon.
    expect((await ask(old, "w", "handed", "/id")).pid).toBe(handed.pid);
    expect(await workerPidOf(old.controlUrl, "handed")).toBe(hostPid);
    expect(pidAlive(hostPid)).toBe(true);
    expect((await ask(old, "w", "handed", `/connect?path=${encodeURIComponent(socket)}`)).ok).toBe(
      false,
    );
  }, 240_000);
});
