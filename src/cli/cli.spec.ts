// The `herd` command end to end: bin/herd as a user runs it, against a real daemon.

import { execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code } from "@connectrpc/connect";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { herdClient, streamEndCode } from "../../test/helpers/control-plane-harness.ts";
import { type Daemon, HERD_BIN, REPO_ROOT, startDaemon } from "../../test/helpers/daemon.ts";
import { eventually } from "../../test/helpers/herd.ts";
import {
  expectNoLeaks,
  killAllWithTag,
  LEAK_TAG_VAR,
  newLeakTag,
  pidAlive,
} from "../../test/helpers/processes.ts";

const dir = mkdtempSync(join(tmpdir(), "herd-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function herd(
  args: string[],
  opts: { cwd?: string; env?: Record<string, string>; bin?: string } = {},
): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      opts.bin ?? HERD_BIN,
      args,
      { cwd: opts.cwd ?? dir, env: { ...process.env, ...opts.env }, timeout: 30_000 },
      (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
  });
}

/**
 * bin/herd with its stdout read as `| head -N` reads it: the reader goes after N lines (0: at
 * once, before anything is written). Resolves with the exit code and stderr.
 */
function herdPiped(
  args: string[],
  lines: number,
): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(HERD_BIN, args, { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
    let seen = 0;
    let stderr = "";
    if (lines === 0) child.stdout.destroy();
    child.stdout.on("data", (chunk: Buffer) => {
      seen += chunk.toString().split("\n").length - 1;
      if (seen >= lines) child.stdout.destroy();
    });
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk;
    });
    child.on("close", (code) => resolve({ code, stderr }));
  });
}

const WORKER_POOL = {
  cmd: ["node", "test/fixtures/worker.mjs"],
  min: 1,
  max: 3,
  health_path: "/health",
  reuse: false,
};

describe("herd without a daemon", () => {
  it("prints its version and help, and refuses unknown commands with exit 2", async () => {
    expect(await herd(["--version"])).toMatchObject({ code: 0, stdout: "herd 0.1.0\n" });
    const help = await herd(["--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("herd serve [--config FILE]");
    const bad = await herd(["frobnicate"]);
    expect(bad).toMatchObject({ code: 2, stdout: "" });
    expect(bad.stderr).toBe(
      'herd: unknown command "frobnicate"\nherd: run `herd --help` for usage\n',
    );
    expect((await herd(["status", "--bogus"])).code).toBe(2);
  });

  it("suggests the command or option meant", async () => {
    const cases: [string[], string][] = [
      [["stauts"], 'unknown command "stauts" (did you mean "status"?)'],
      [["sesions"], 'unknown command "sesions" (did you mean "sessions"?)'],
      [
        ["config", "chek", "x.yaml"],
        'unknown command "config chek" (did you mean "config check"?)',
      ],
      [["cluster", "stats"], 'unknown command "cluster stats" (did you mean "cluster status"?)'],
      [["status", "--jsn"], 'unknown option "--jsn" (did you mean "--json"?)'],
      [["watch", "--snapshop"], 'unknown option "--snapshop" (did you mean "--snapshot"?)'],
      [["serve", "--confg", "x"], 'unknown option "--confg" (did you mean "--config"?)'],
      [["config", "check", "--jsn", "x.yaml"], 'unknown option "--jsn" (did you mean "--json"?)'],
      [["--verison"], 'unknown option "--verison" (did you mean "--version"?)'],
    ];
    for (const [args, line] of cases) {
      const r = await herd(args);
      expect(r, args.join(" ")).toMatchObject({ code: 2, stdout: "" });
      expect(r.stderr, args.join(" ")).toBe(`herd: ${line}\nherd: run \`herd --help\` for usage\n`);
    }
  });

  it("every command takes --json, as the README says", async () => {
    writeFileSync(join(dir, "json.yaml"), "workers:\n  a:\n    cmd: [node, x.js, '{{.Port}}']\n");
    const down = ["--addr", "127.0.0.1:1"];
    for (const args of [
      ["version"],
      ["config", "check", "json.yaml"],
      ["serve", "--config", "missing.yaml"],
      ["status", ...down],
      ["sessions", ...down],
      ["cluster", "status", ...down],
      ["watch", "--count", "1", ...down],
      ["logs", "some-session", ...down],
    ]) {
      const r = await herd([...args, "--json"]);
      expect(r.stderr, args.join(" ")).not.toMatch(/unknown option|Unknown option/);
      // serve exits 2 here for the missing config, which is what it says instead.
      if (args[0] === "serve") expect(r.stderr).toContain("no config file at missing.yaml");
      else expect(r.code, `${args.join(" ")}: ${r.stderr}`).not.toBe(2);
    }
    expect(JSON.parse((await herd(["version", "--json"])).stdout)).toEqual({ version: "0.1.0" });
  });

  it("a reader that goes early (`| head -1`) ends it quietly with exit 0", async () => {
    expect(await herdPiped(["--help"], 0)).toEqual({ code: 0, stderr: "" });
    expect(await herdPiped(["--version"], 0)).toEqual({ code: 0, stderr: "" });
    // Failures still fail, and say so on stderr.
    const down = await herdPiped(["status", "--addr", "127.0.0.1:1"], 0);
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/^herd: cannot reach the herd daemon/);
  });

  it("runs from any directory and through a symlink", async () => {
    const link = join(dir, "herd-link");
    symlinkSync(HERD_BIN, link);
    expect(await herd(["--version"], { bin: link, cwd: "/" })).toMatchObject({
      code: 0,
      stdout: "herd 0.1.0\n",
    });
  });

  it("config check: a summary and exit 0, or file:line:col errors and exit 2", async () => {
    const good = join(dir, "good.yaml");
    writeFileSync(
      good,
      'workers:\n  browser:\n    cmd: ["node", "x.js"]\n    min: 1\n    max: 5\n    ttl: "15m"\n',
    );
    const ok = await herd(["config", "check", good]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain("OK");
    expect(ok.stdout).toContain("pool browser (default): 1-5 workers, ttl 15m");
    const bad = join(dir, "bad.yaml");
    writeFileSync(bad, "workers:\n  a:\n    cmd: [node]\n    mn: 1\n    max: 0\n");
    const r = await herd(["config", "check", "bad.yaml"]);
    expect(r).toMatchObject({ code: 2, stdout: "" });
    expect(r.stderr).toBe(
      'bad.yaml:4:5: workers.a.mn: unknown key "mn" (did you mean "min"?)\nbad.yaml:5:10: workers.a.max: must be ≥ 1\n',
    );
    expect((await herd(["config", "check"])).code).toBe(2);
    expect(await herd(["config", "check", "missing.yaml"])).toMatchObject({
      code: 2,
      stderr: "herd: missing.yaml: cannot read config: no such file\n",
    });
  });

  it("config check --json: valid with its warnings, or every problem with file, line, col and path", async () => {
    const ok = await herd(["config", "check", "--json", "good.yaml"]);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toEqual({
      file: "good.yaml",
      valid: true,
      warnings: [
        expect.objectContaining({
          file: "good.yaml",
          line: 3,
          col: 10,
          path: "workers.browser.cmd",
        }),
      ],
    });
    const bad = await herd(["config", "check", "bad.yaml", "--json"]);
    expect(bad).toMatchObject({ code: 2, stderr: "" });
    expect(JSON.parse(bad.stdout)).toEqual({
      file: "bad.yaml",
      valid: false,
      problems: [
        {
          file: "bad.yaml",
          line: 4,
          col: 5,
          path: "workers.a.mn",
          message: 'unknown key "mn" (did you mean "min"?)',
        },
        { file: "bad.yaml", line: 5, col: 10, path: "workers.a.max", message: "must be ≥ 1" },
      ],
    });
    const missing = await herd(["config", "check", "--json", "missing.yaml"]);
    expect(missing.code).toBe(2);
    expect(JSON.parse(missing.stdout)).toEqual({
      file: "missing.yaml",
      valid: false,
      problems: [
        { file: "missing.yaml", message: "missing.yaml: cannot read config: no such file" },
      ],
    });
  });

  it("config check: an unknown template field fails; a cmd that is never told its port warns", async () => {
    writeFileSync(
      join(dir, "typo.yaml"),
      'workers:\n  a:\n    cmd: [node, server.js, "--port={{.Prot}}"]\n    env:\n      ADDR: "127.0.0.1:{{ .Pid }}"\n',
    );
    const typo = await herd(["config", "check", "typo.yaml"]);
    expect(typo).toMatchObject({ code: 2, stdout: "" });
    expect(typo.stderr).toBe(
      'typo.yaml:3:28: workers.a.cmd[2]: unknown template field "{{.Prot}}" (did you mean "{{.Port}}"?): the only field is {{.Port}}, the worker\'s port\n' +
        'typo.yaml:5:13: workers.a.env.ADDR: unknown template field "{{ .Pid }}": the only field is {{.Port}}, the worker\'s port\n',
    );
    const warning =
      "warning: neither {{.Port}} nor PORT appears in cmd or env: each worker must listen on the port herd gives it (in $PORT and {{.Port}}); fine if the program reads PORT itself";
    writeFileSync(join(dir, "portless.yaml"), "workers:\n  a:\n    cmd: [node, server.js]\n");
    const portless = await herd(["config", "check", "portless.yaml"]);
    expect(portless.code).toBe(0);
    expect(portless.stdout).toContain("portless.yaml: OK");
    expect(portless.stderr).toBe(`portless.yaml:3:10: workers.a.cmd: ${warning}\n`);
    // Told the port in any of the ways a program can be: no warning.
    for (const told of [
      "cmd: [node, server.js, --port, '{{.Port}}']",
      "cmd: [sh, -c, 'exec node server.js --port $PORT']",
      "cmd: [node, server.js]\n    env: { LISTEN: ':{{ .Port }}' }",
    ]) {
      writeFileSync(join(dir, "told.yaml"), `workers:\n  a:\n    ${told}\n`);
      expect(await herd(["config", "check", "told.yaml"]), told).toMatchObject({
        code: 0,
        stderr: "",
      });
    }
  });

  it("serve without a config: one line and exit 2", async () => {
    const r = await herd(["serve"]);
    expect(r).toMatchObject({ code: 2, stdout: "" });
    // The demo it names ships in the package, so it is there wherever herd runs from.
    const demo = join(REPO_ROOT, "examples/demo/herd.yaml");
    expect(r.stderr).toBe(
      `herd: no config file at herd.yaml: pass --config FILE (${demo} is a working start)\n`,
    );
    expect((await herd(["config", "check", demo])).code).toBe(0);
  });

  it("serve with a bad config: its errors and exit 2", async () => {
    writeFileSync(join(dir, "herd.yaml"), "workers:\n  a:\n    cmd: [no-such-program-herd]\n");
    const r = await herd(["serve"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      'herd.yaml:3:11: workers.a.cmd[0]: command "no-such-program-herd" not found on PATH: install it or give its full path\n',
    );
  });

  it("serve on a port in use: one line naming it, exit 1, no worker started", async () => {
    const blocker: Server = createServer();
    await new Promise<void>((r) => blocker.listen(0, "127.0.0.1", r));
    const port = (blocker.address() as { port: number }).port;
    const { tag, env } = newLeakTag();
    try {
      writeFileSync(
        join(dir, "busy.yaml"),
        `workers:\n  a:\n    cmd: [node, ${process.cwd()}/test/fixtures/worker.mjs]\n    min: 1\n    env_passthrough: [${LEAK_TAG_VAR}]\ncontrol:\n  listen: "127.0.0.1:0"\ndata:\n  listen: "127.0.0.1:${port}"\n`,
      );
      const r = await herd(["serve", "--config", "busy.yaml"], { env });
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(
        `herd: 127.0.0.1:${port} is already in use (data.listen in busy.yaml): another herd or another program is listening there. Stop it, or choose a free port in data.listen in busy.yaml\n`,
      );
      // Its cmd never names the port (the fixture reads PORT itself): a warning, not an error.
      expect(r.stdout).toContain(
        "busy.yaml:3:10: workers.a.cmd: warning: neither {{.Port}} nor PORT appears in cmd or env",
      );
      await expectNoLeaks(tag);
    } finally {
      blocker.close();
      killAllWithTag(tag);
    }
  });

  it("status against no daemon: one line saying how to point at one", async () => {
    const r = await herd(["status", "--addr", "127.0.0.1:1"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      "herd: cannot reach the herd daemon at http://127.0.0.1:1 (ECONNREFUSED): is `herd serve` running there? Point --addr or HERD_ADDR at it\n",
    );
  });
});

describe("herd against a running daemon", () => {
  let daemon: Daemon | undefined;
  const tags: string[] = [];
  afterEach(async () => {
    await daemon?.kill();
    daemon = undefined;
    for (const t of tags.splice(0)) killAllWithTag(t);
  });

  it("status, sessions and watch: tables for people, JSON for scripts, token from HERD_TOKEN", async () => {
    const { tag, env } = newLeakTag();
    tags.push(tag);
    daemon = await startDaemon({
      config: {
        workers: { demo: { ...WORKER_POOL, disconnect_grace: "10m" } },
        control: { token: "cli-token" },
      },
      env,
    });
    const addr = daemon.controlUrl;
    const token = { HERD_TOKEN: "cli-token" };
    const c = herdClient("connect-h1", addr, "cli-token");
    const s = (await c.acquireSession({ sessionId: "alice", labels: { team: "a" } })).session!;

    const denied = await herd(["status", "--addr", addr]);
    expect(denied.code).toBe(1);
    expect(denied.stderr).toMatch(
      /^herd: the daemon at .* refused the call: .*Pass --token or set HERD_TOKEN\n$/,
    );

    const status = await herd(["status", "--addr", addr], { env: token });
    expect(status.code).toBe(0);
    const [header, row] = status.stdout.split("\n");
    expect(header!.split(/\s+/)).toEqual([
      "POOL",
      "WORKERS",
      "IDLE",
      "BUSY",
      "STARTING",
      "SESSIONS",
      "QUEUED",
      "MIN",
      "MAX",
    ]);
    expect(row!.split(/\s+/).slice(0, 1).concat(row!.split(/\s+/).slice(5))).toEqual([
      "demo",
      "1",
      "0",
      "1",
      "3",
    ]);
    expect(status.stdout).toMatch(/node: .* memory available, CPU \d+% idle, load \d+\.\d\d/);
    const json = JSON.parse(
      (await herd(["status", "--json", "--addr", addr, "--token", "cli-token"])).stdout,
    );
    expect(json.pools[0]).toMatchObject({ name: "demo", sessions: 1, max: 3 });

    const sessions = await herd(["sessions", "--addr", addr], { env: token });
    expect(sessions.stdout).toMatch(
      new RegExp(
        `^SESSION\\s+POOL\\s+WORKER\\s+PID\\s+AGE\\s+IDLE\\s+CONNS\\s+WINDOW\\s+LABELS\\nalice\\s+demo\\s+${s.workerId}\\s+${s.workerPid}\\s+\\S+\\s+\\S+\\s+0\\s+-\\s+team=a\\n$`,
      ),
    );
    const sj = JSON.parse(
      (await herd(["sessions", "--json", "--addr", addr], { env: token })).stdout,
    );
    expect(sj.sessions[0]).toMatchObject({ sessionId: "alice", workerPid: s.workerPid });

    const watched = await herd(["watch", "--snapshot", "--count", "2", "--addr", addr], {
      env: token,
    });
    expect(watched.code).toBe(0);
    const lines = watched.stdout.trim().split("\n");
    expect(lines[0]).toMatch(
      new RegExp(
        `^\\d\\d:\\d\\d:\\d\\d\\.\\d{3} #\\d+ snapshot\\s+pool=demo session=alice worker=${s.workerId} pid=${s.workerPid}$`,
      ),
    );
    expect(lines[1]).toMatch(/#\d+ snapshot_complete$/);
    const wj = await herd(["watch", "--json", "--since", "1", "--count", "1", "--addr", addr], {
      env: token,
    });
    expect(JSON.parse(wj.stdout)).toMatchObject({ revision: "2" });

    // A holder that went: its session shows the time left in its reconnect window.
    const drop = new AbortController();
    await c
      .holdSession({ sessionId: "bob" }, { signal: drop.signal })
      [Symbol.asyncIterator]()
      .next();
    drop.abort();
    let bob = "";
    for (let i = 0; i < 150 && !bob.includes("left"); i++) {
      await new Promise((r) => setTimeout(r, 100));
      const out = (await herd(["sessions", "--addr", addr], { env: token })).stdout;
      bob = out.split("\n").find((l) => l.startsWith("bob")) ?? "";
    }
    expect(bob).toMatch(/^bob\s+demo\s+\S+\s+\d+\s+\S+\s+\S+\s+0\s+9m5\ds left\s+-$/);
    await daemon.stop();
    await expectNoLeaks(tag);
  });

  it("status, sessions, cluster status and watch piped into a reader that goes early: quiet, exit 0", async () => {
    const { tag, env } = newLeakTag();
    tags.push(tag);
    daemon = await startDaemon({ config: { workers: { demo: WORKER_POOL } }, env });
    const addr = ["--addr", daemon.controlUrl];
    for (const args of [["status"], ["sessions"], ["cluster", "status"], ["status", "--json"]]) {
      expect(await herdPiped([...args, ...addr], 0), args.join(" ")).toEqual({
        code: 0,
        stderr: "",
      });
    }
    // `herd watch --snapshot --count 50 | head -1`: the stream is still open when the reader
    // goes; the next event it prints finds nobody reading.
    const watched = herdPiped(["watch", "--snapshot", "--count", "50", ...addr], 1);
    let ended = false;
    void watched.then(() => {
      ended = true;
    });
    const c = herdClient("connect-h1", daemon.controlUrl);
    for (let i = 0; !ended && i < 300; i++) {
      await c.acquireSession({ sessionId: `s${i}` });
      await c.releaseSession({ sessionId: `s${i}` });
    }
    expect(await watched).toEqual({ code: 0, stderr: "" });
    expect(await herdPiped(["status", ...addr], 1)).toEqual({ code: 0, stderr: "" });
    await daemon.stop();
    await expectNoLeaks(tag);
  });

  it("status names a crash-looping pool: its streak, backoff and last crash", async () => {
    const { tag, env } = newLeakTag();
    tags.push(tag);
    // Ready, then gone 150 ms later, every time.
    const crashesSoon = `require("node:http").createServer((q, r) => r.end()).listen(Number(process.env.PORT), "127.0.0.1", () => setTimeout(() => { console.error("fatal: no database"); process.exit(3); }, 150));`;
    daemon = await startDaemon({
      config: {
        workers: {
          flaky: {
            cmd: ["node", "-e", crashesSoon],
            min: 1,
            max: 1,
            ready: "tcp",
            restart_backoff: "10s",
            restart_backoff_max: "10s",
          },
        },
      },
      env,
    });
    const c = herdClient("connect-h1", daemon.controlUrl);
    await eventually("two crashes in a row", async () => {
      const [pool] = (await c.getStats({})).pools;
      return pool!.crashStreak >= 2 && pool!.restartBackoff !== undefined;
    });
    const status = await herd(["status", "--addr", daemon.controlUrl]);
    expect(status.stdout).toMatch(
      /\nflaky: crash-looping, 2 crashes in a row, next start in \d+\.\d s; last: exited with code 3; stderr: fatal: no database\n/,
    );
    const json = JSON.parse((await herd(["status", "--json", "--addr", daemon.controlUrl])).stdout);
    expect(json.pools[0]).toMatchObject({ name: "flaky", crashStreak: 2 });
  });

  it("SIGTERM with live sessions and open streams: streams end UNAVAILABLE, exit 0, no orphans", async () => {
    const { tag, env } = newLeakTag();
    tags.push(tag);
    daemon = await startDaemon({ config: { workers: { demo: WORKER_POOL } }, env });
    const g = herdClient("grpc", daemon.controlUrl);
    const h1 = herdClient("connect-h1", daemon.controlUrl);
    const pids = [(await g.acquireSession({ sessionId: "one" })).session!.workerPid];
    const hold = g.holdSession({ sessionId: "two" })[Symbol.asyncIterator]();
    const first = (await hold.next()).value!;
    pids.push(first.kind.case === "session" ? first.kind.value.workerPid : 0);
    const watch = h1.watchSessions({ snapshot: true })[Symbol.asyncIterator]();
    await watch.next();
    // A worker that spawned grandchildren which left its process group must die too.
    await fetch(`${daemon.dataUrl}/control/spawn?count=2&setsid=1`, {
      method: "POST",
      headers: { "X-Session-ID": "one" },
    });
    for (const pid of pids) expect(pidAlive(pid)).toBe(true);

    const exit = await daemon.stop();
    expect(exit).toEqual({ code: 0, signal: null });
    expect(await streamEndCode(hold)).toBe(Code.Unavailable);
    expect(await streamEndCode(watch)).toBe(Code.Unavailable);
    expect(daemon.stdout()).toContain('"msg":"herd stopped"');
    await expectNoLeaks(tag, { withinMs: 500 });
  });
});
