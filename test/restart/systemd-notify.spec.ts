// What the daemon tells systemd (src/cli/systemd-notify.ts), without systemd: the test listens
// on a Unix datagram socket (a few lines of Python: Node has none) that NOTIFY_SOCKET names, as
// systemd's would, and closes the descriptor of each BARRIER=1 as systemd does (that is how
// `systemd-notify` learns its message was read). Expected: READY=1 once started; on
// `herd restart`, RELOADING=1 from the old process, then MAINPID=<new pid> with READY=1 from
// the new one; a restart the config on disk refuses ends with READY=1 again.

import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { spawnCaptured } from "../helpers/captured.ts";
import { HERD_BIN, startDaemon } from "../helpers/daemon.ts";
import { newLeakTag, pidAlive } from "../helpers/processes.ts";
import { daemonPids, RESTART_CONFIG, stopEveryGeneration, until } from "./restart-helpers.ts";

// Prints each message as one JSON line (BARRIER=1 ones answered by closing their fd).
const LISTENER = `
import array, json, os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print(json.dumps("listening"), flush=True)
while True:
    data, anc, _, _ = s.recvmsg(65536, socket.CMSG_SPACE(16 * 4))
    for level, kind, payload in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds = array.array("i")
            fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
            for fd in fds:
                os.close(fd)
    if data != b"BARRIER=1":
        print(json.dumps(data.decode()), flush=True)
`;

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe("systemd notifications (NOTIFY_SOCKET)", () => {
  it("READY=1 at start; RELOADING=1, then MAINPID=<new pid> and READY=1 across a restart", async () => {
    const { tag, env } = newLeakTag();
    const dir = mkdtempSync(join(tmpdir(), "herd-notify-"));
    const path = join(dir, "notify.sock");
    const listener = spawnCaptured("python3", ["-c", LISTENER, path]);
    cleanups.push(async () => {
      listener.child.kill("SIGKILL");
      await listener.exited;
      rmSync(dir, { recursive: true, force: true });
    });
    await until("the listener", () => existsSync(path));
    const messages = () =>
      listener
        .stdout()
        .split("\n")
        .filter((l) => l !== "")
        .map((l) => JSON.parse(l) as string)
        .filter((m) => m !== "listening");

    const daemon = await startDaemon({
      config: RESTART_CONFIG,
      env: { ...env, NOTIFY_SOCKET: path },
    });
    cleanups.push(async () => {
      await stopEveryGeneration(tag, daemon);
    });
    await until("READY=1 at start", () => messages().length >= 1);
    expect(messages()).toEqual(["READY=1"]);

    const restart = async () => {
      const run = spawnCaptured(process.execPath, [
        HERD_BIN,
        "restart",
        "--addr",
        daemon.controlUrl,
        "--json",
      ]);
      return { exit: await run.exited, stdout: run.stdout(), stderr: run.stderr() };
    };

    // A restart the config on disk refuses: reloading, then ready again (the same process).
    const config = readFileSync(daemon.configFile, "utf8");
    writeFileSync(daemon.configFile, `${config}\nnot_a_key: 1\n`);
    expect((await restart()).exit.code).toBe(1);
    await until("ready again", () => messages().length >= 3);
    expect(messages().slice(1)).toEqual([expect.stringMatching(/^RELOADING=1\n/), "READY=1"]);
    writeFileSync(daemon.configFile, config);

    const r = await restart();
    expect(r.exit.code, r.stderr).toBe(0);
    const { pid } = JSON.parse(r.stdout) as { pid: number };
    expect(pid).not.toBe(daemon.pid);
    await until("the new process's message", () => messages().length >= 5);
    const [reload, handed] = messages().slice(3);
    expect(reload).toMatch(/^RELOADING=1\nMONOTONIC_USEC=\d+$/);
    expect(handed).toBe(`MAINPID=${pid}\nREADY=1`);
    await until("the old process to leave", () => (pidAlive(daemon.pid) ? undefined : true));
    expect(daemonPids(tag)).toEqual([pid]);
    expect(messages()).toHaveLength(5);
  }, 120_000);
});
