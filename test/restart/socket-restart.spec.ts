// `herd restart` with control.socket (src/sandbox/hidden-socket.ts, src/cli/restart.ts): the
// Unix socket's listening socket is handed over like the TCP listeners. A client dialing the
// configured path before, during (at every step of the hand-over, the HERD_RESTART_HOLD hook
// pausing it, and continuously throughout) and after the restart is served; afterwards the old
// process is gone, the path is there and leads into the new process's runtime directory, the
// old one's is gone, and neither the handed worker nor a new one can reach the socket. A new
// process killed once it took the path over leaves it to the old one, which points it back.

import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, it } from "vitest";
import { spawnCaptured } from "../helpers/captured.ts";
import { type Daemon, HERD_BIN, startDaemon } from "../helpers/daemon.ts";
import { newLeakTag, pidAlive } from "../helpers/processes.ts";
import { ask, hostilePool, type UidRange } from "../security/isolation-harness.ts";
import { daemonPids, HAND_OVER_STEPS, stopEveryGeneration, until } from "./restart-helpers.ts";

const STEPS = HAND_OVER_STEPS;

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A GetStats call (Connect, JSON) over the Unix socket at `path`: the status, or the error's
 * code. */
function overSocket(path: string): Promise<number | string> {
  return new Promise((resolve) => {
    const req = request(
      {
        socketPath: path,
        path: "/herd.v1.HerdService/GetStats",
        method: "POST",
        headers: { "content-type": "application/json" },
        agent: false,
        timeout: 60_000,
      },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
        res.on("error", (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
      },
    );
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    req.end("{}");
  });
}

/** A daemon with control.socket and a contained pool, paused at every step of a restart. */
async function socketDaemon() {
  const { tag, env } = newLeakTag();
  const dir = mkdtempSync(join(tmpdir(), "herd-sock-restart-"));
  const hold = join(dir, "hold");
  mkdirSync(hold);
  const path = join(dir, "ctl.sock");
  const first = 3_600_000 + Math.floor(Math.random() * 90_000) * 10;
  const range: UidRange = [first, first + 9];
  const t = {
    daemon: undefined as Daemon | undefined,
    stopDialing: false,
    dialer: Promise.resolve(),
  };
  cleanups.push(async () => {
    t.stopDialing = true;
    await t.dialer;
    await stopEveryGeneration(tag, t.daemon, range);
    rmSync(dir, { recursive: true, force: true });
  });
  const daemon = await startDaemon({
    config: {
      drain_timeout: "30s",
      control: { socket: path },
      workers: {
        w: {
          ...hostilePool(env, {
            user: "auto",
            uid_range: range.join("-"),
            network: "private",
            filesystem: "host",
          }),
          min: 0,
          max: 4,
        },
      },
    },
    env: { ...env, HERD_RESTART_HOLD: hold },
  });
  t.daemon = daemon;
  /** Starts `herd restart`; `reach(step)` waits for the hand-over to pause there. */
  const restart = () => {
    for (const name of readdirSync(hold)) rmSync(join(hold, name)); // a previous restart's steps
    const run = spawnCaptured(process.execPath, [HERD_BIN, "restart", "--addr", daemon.controlUrl]);
    let exited = false;
    void run.exited.then(() => {
      exited = true;
    });
    const reach = async (step: (typeof STEPS)[number]) => {
      const file = join(hold, step);
      await until(`the restart to reach ${step}`, () => existsSync(file) || exited);
      if (!existsSync(file)) throw new Error(`restart ended before ${step}: ${run.stderr()}`);
      return {
        pid: (JSON.parse(readFileSync(file, "utf8")) as { pid: number }).pid,
        go: () => writeFileSync(`${file}.go`, ""),
      };
    };
    return { run, reach };
  };
  return { daemon, tag, path, t, restart };
}

describe("herd restart with control.socket", () => {
  it("hands the socket over: served before, during and after, by the new process", async () => {
    const { daemon: old, tag, path, t, restart } = await socketDaemon();
    expect(await overSocket(path)).toBe(200);
    const oldTarget = readlinkSync(path);
    expect(oldTarget).toContain(`/herd-sandbox/${old.pid}-`);
    // A worker that the restart will hand over cannot reach the socket before it either.
    expect((await ask(old, "w", "handed", `/connect?path=${encodeURIComponent(path)}`)).ok).toBe(
      false,
    );

    // Clients dialing all along, a connection at a time each: every connection is served.
    const dialed: (number | string)[] = [];
    const dialer = async () => {
      while (!t.stopDialing) {
        dialed.push(await overSocket(path));
        await sleep(5);
      }
    };
    t.dialer = Promise.all([dialer(), dialer(), dialer()]).then(() => {});
    const { run, reach } = restart();
    for (const step of STEPS) {
      const at = await reach(step);
      // Dialed while the hand-over is paused at this step: served.
      expect(await overSocket(path), step).toBe(200);
      at.go();
    }
    const exit = await run.exited;
    expect({ code: exit.code, stderr: run.stderr() }).toEqual({ code: 0, stderr: "" });
    await until("the old daemon to leave", () => (pidAlive(old.pid) ? undefined : true));
    t.stopDialing = true;
    await t.dialer;
    console.log(`socket restart: ${dialed.length} connections dialed across the hand-over`);
    expect(dialed.length).toBeGreaterThan(0);
    expect(dialed.filter((r) => r !== 200)).toEqual([]);

    const [successor] = daemonPids(tag);
    expect(daemonPids(tag)).toEqual([successor]);
    expect(successor).not.toBe(old.pid);
    // The path is there, leads into the new process's runtime directory, and is served.
    expect(readlinkSync(path)).toContain(`/herd-sandbox/${successor}-`);
    expect(existsSync(dirname(oldTarget))).toBe(false);
    expect(await overSocket(path)).toBe(200);
    // Neither the handed worker nor a new one reaches it.
    for (const session of ["handed", "fresh"]) {
      const r = await ask(old, "w", session, `/connect?path=${encodeURIComponent(path)}`);
      expect(r.ok, session).toBe(false);
    }

    // And once more: the successor hands on what it was handed.
    const again = restart();
    for (const step of STEPS) (await again.reach(step)).go();
    expect((await again.run.exited).code, again.run.stderr()).toBe(0);
    await until("the first successor to leave", () => (pidAlive(successor!) ? undefined : true));
    const [third] = daemonPids(tag);
    expect(daemonPids(tag)).toEqual([third]);
    expect(readlinkSync(path)).toContain(`/herd-sandbox/${third}-`);
    expect(await overSocket(path)).toBe(200);
  }, 240_000);

  it("a new process killed after it took the path over: the old one points it back and serves", async () => {
    const { daemon: old, tag, path, restart } = await socketDaemon();
    const ownTarget = readlinkSync(path);
    const { run, reach } = restart();
    for (const step of STEPS.slice(0, -1)) (await reach(step)).go();
    const serving = await reach("new-serving");
    // The new process serves the path from its own runtime directory already.
    expect(readlinkSync(path)).toContain(`/herd-sandbox/${serving.pid}-`);
    process.kill(serving.pid, "SIGKILL");
    const exit = await run.exited;
    expect(exit.code).toBe(1);
    expect(run.stderr()).toMatch(/restart failed: the new process exited before it served/);
    expect(readlinkSync(path)).toBe(ownTarget);
    expect(await overSocket(path)).toBe(200);
    expect(daemonPids(tag)).toEqual([old.pid]);
  }, 240_000);
});
