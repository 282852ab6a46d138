// Every fenced block of the top-level README.md, run as the README says, against real daemons
// (DEVELOPERS: "Every example in the README is exercised by a test"). The blocks are read from
// README.md at test time and classified by fence language and content, so the test follows
// the README; a block no kind below recognises fails the suite, so no example goes untested.
// Commands run through `bash -c` as written, with only the demo's fixed ports swapped for the
// test daemon's free ones; each test proves every process it caused is gone.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Client, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { HerdService, type SessionEvent, SessionEventType } from "../gen/herd/v1/herd_pb.ts";
import { DEFAULT_ADDR } from "../src/cli/index.ts";
import { inlinePage } from "./helpers/chromium.ts";
import { type Daemon, REPO_ROOT, startDaemon } from "./helpers/daemon.ts";
import { freePort } from "./helpers/ports.ts";
import { expectNoLeaks, killAllWithTag, type LeakTag, newLeakTag } from "./helpers/processes.ts";
import { type Fence, fences } from "./readme/fences.ts";
import { interrupt, type Job, launch, sh, waitFor } from "./readme/run.ts";

const README = readFileSync(join(REPO_ROOT, "README.md"), "utf8");
const BLOCKS = fences(README, "README.md");
const PKG = JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as {
  scripts: Record<string, string>;
};
const FIXTURE_WORKER = "test/fixtures/worker.mjs";
const TEST_TIMEOUT = 180_000;

const at = (f: Fence, i = 0) => `README.md:${f.line + 1 + i}`;
const lines = (f: Fence) => f.body.split("\n").filter((l) => l.trim() !== "");
/** `cmd   # comment` → [cmd, comment]; the README's commands contain no " #". */
const splitComment = (line: string): [string, string] => {
  const m = /^(.*?)\s+#\s?(.*)$/.exec(line);
  return m ? [m[1]!, m[2]!] : [line, ""];
};

// ---- the daemon `npm start` runs ----------------------------------------------------------

/** scripts.start is `node bin/herd serve --config FILE`: FILE is what the tests serve too,
 * through startDaemon, which runs exactly that command on a copy with free ports. */
function demoConfig(): string {
  const m = /^node bin\/herd serve --config (\S+)$/.exec(PKG.scripts.start ?? "");
  if (!m) {
    throw new Error(
      `package.json scripts.start is ${JSON.stringify(PKG.scripts.start)}, not "node bin/herd serve --config FILE" (the command these tests run through startDaemon)`,
    );
  }
  return m[1]!;
}

function listenPort(file: string, plane: "control" | "data"): number {
  const doc = parse(readFileSync(join(REPO_ROOT, file), "utf8")) as Record<
    string,
    { listen?: string } | undefined
  >;
  const port = Number(/:(\d+)$/.exec(doc[plane]?.listen ?? "")?.[1]);
  if (!port) throw new Error(`${file}: no ${plane}.listen port`);
  return port;
}

// ---- per-test processes -------------------------------------------------------------------

let leak: LeakTag;
let daemons: Daemon[];
/** Background commands of a block (a README line ending in `&`), stopped after the daemons. */
let jobs: Job[];
let temps: string[];

beforeEach(() => {
  leak = newLeakTag();
  daemons = [];
  jobs = [];
  temps = [];
});
afterEach(async () => {
  const exits = await Promise.all(daemons.map((d) => d.stop()));
  await Promise.all(jobs.map((j) => interrupt(j)));
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
  try {
    await expectNoLeaks(leak.tag, { withinMs: 5000 });
  } finally {
    killAllWithTag(leak.tag);
  }
  for (const exit of exits) {
    expect(exit, "herd serve shuts down cleanly on SIGTERM").toEqual({ code: 0, signal: null });
  }
});

async function daemon(
  config: string | Record<string, unknown>,
  env: Record<string, string> = leak.env,
): Promise<Daemon> {
  const d = await startDaemon({ config, env, readyTimeoutMs: 60_000 });
  daemons.push(d);
  return d;
}

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "herd-readme-"));
  temps.push(dir);
  return dir;
}

const hostPort = (url: string) => url.replace(/^http:\/\//, "");

/** The generated client on a connection per call: no idle keep-alive socket delays shutdown. */
function rpc(d: Daemon): Client<typeof HerdService> {
  return createClient(
    HerdService,
    createConnectTransport({
      baseUrl: d.controlUrl,
      httpVersion: "1.1",
      nodeOptions: { agent: false },
    }),
  );
}

/** Collects a pool's events; resolves once the stream is provably live (its snapshot is
 * complete), so nothing that happens later can be missed. */
async function watchEvents(d: Daemon, pool: string) {
  const stop = new AbortController();
  const events: SessionEvent[] = [];
  let failed: unknown;
  const done = (async () => {
    try {
      const stream = rpc(d).watchSessions({ pool, snapshot: true }, { signal: stop.signal });
      for await (const e of stream) events.push(e);
    } catch (err) {
      if (!stop.signal.aborted) failed = err;
    }
  })();
  await waitFor("the watch stream's snapshot", () => {
    if (failed) throw failed;
    return events.some((e) => e.type === SessionEventType.SNAPSHOT_COMPLETE) ? true : undefined;
  });
  return {
    events,
    async close() {
      stop.abort();
      await done;
      if (failed) throw failed;
    },
  };
}

const SNAPSHOT_COMPLETE = "SESSION_EVENT_TYPE_SNAPSHOT_COMPLETE";

/** Runs a `herd watch --snapshot --json ...` line until it has printed the whole snapshot, then
 * Ctrl-C, as a reader would; it must stop cleanly. Returns the snapshot's sessions. */
async function watchSnapshot(line: string, env: Record<string, string>): Promise<string[]> {
  const job = launch(line, env);
  const printed = () =>
    job
      .stdout()
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { type: string; revision: string; sessionId?: string });
  await waitFor(`the end of the snapshot from \`${line}\``, () =>
    printed().some((e) => e.type === SNAPSHOT_COMPLETE) || job.child.exitCode !== null
      ? true
      : undefined,
  );
  const exit = await interrupt(job);
  expect(exit, `\`${line}\` stops cleanly on Ctrl-C: ${job.stderr()}`).toEqual({
    code: 0,
    signal: null,
  });
  const events = printed();
  for (const e of events) expect(Number(e.revision), JSON.stringify(e)).toBeGreaterThan(0);
  return events.filter((e) => e.type !== SNAPSHOT_COMPLETE).map((e) => e.sessionId ?? "");
}

// ---- the kinds of block --------------------------------------------------------------------

interface Kind {
  name: string;
  matches(f: Fence): boolean;
  run(f: Fence): Promise<void>;
}

const allLinesStartWith = (f: Fence, prefix: string) =>
  f.lang === "sh" && lines(f).length > 0 && lines(f).every((l) => l.startsWith(prefix));

interface Counter {
  worker: string;
  counter: number;
}

/**
 * Runs one curl line of the README (its addresses already moved to the test's ports) and
 * checks what its comment claims against the answer; `seen` holds the earlier lines' answers.
 */
async function runCurlLine(
  command: string,
  claim: string,
  where: string,
  seen: Counter[],
  env: Record<string, string>,
): Promise<Counter> {
  const r = await sh(command, env);
  expect(r.code, `${where}: ${r.stderr}`).toBe(0);
  const got = JSON.parse(r.stdout) as Counter;
  expect(got, where).toEqual({ worker: expect.any(String), counter: expect.any(Number) });

  let checked = 0;
  const json = /^\{.*\}$/.exec(claim.trim());
  if (json) {
    // The comment shows a whole answer: same fields and types (the worker id is illustrative).
    const shown = JSON.parse(json[0]) as Record<string, unknown>;
    expect(Object.keys(got).sort(), where).toEqual(Object.keys(shown).sort());
    checked++;
  }
  const counter = /"counter":\s*(\d+)/.exec(claim);
  if (counter) {
    expect(got.counter, `${where}: ${claim}`).toBe(Number(counter[1]));
    checked++;
  }
  if (/same worker/.test(claim)) {
    expect(got.worker, `${where}: ${claim}`).toBe(seen.at(-1)?.worker);
    checked++;
  }
  if (/another process|another worker/.test(claim)) {
    expect(
      seen.map((s) => s.worker),
      `${where}: ${claim}`,
    ).not.toContain(got.worker);
    checked++;
  }
  expect(checked, `${where}: no check knows the claim ${JSON.stringify(claim)}`).toBeGreaterThan(0);
  seen.push(got);
  return got;
}

/** Runs the curl block against a daemon and checks each line's comment; returns the answers. */
async function runCurlBlock(f: Fence, d: Daemon): Promise<Counter[]> {
  const seen: Counter[] = [];
  for (const [i, line] of lines(f).entries()) {
    const [command, claim] = splitComment(line);
    const where = `${at(f, i)} \`${command}\``;
    expect(command, `${where} talks to the demo's data plane`).toContain("localhost:8080");
    const moved = command.replaceAll("localhost:8080", hostPort(d.dataUrl));
    await runCurlLine(moved, claim, where, seen, leak.env);
  }
  return seen;
}

const curlKind: Kind = {
  name: "curl walkthrough on the demo daemon",
  matches: (f) => allLinesStartWith(f, "curl "),
  async run(f) {
    const d = await daemon(demoConfig());
    const answers = await runCurlBlock(f, d);
    expect(answers.length).toBeGreaterThan(0);
  },
};

const npmKind: Kind = {
  name: "npm commands",
  matches: (f) => allLinesStartWith(f, "npm "),
  async run(f) {
    for (const [i, line] of lines(f).entries()) {
      const [command, claim] = splitComment(line);
      const where = `${at(f, i)} \`${command}\``;
      const name = /^npm (\S+)$/.exec(command)?.[1];
      expect(name, `${where}: one npm command, no arguments`).toBeDefined();
      if (name === "install" || name === "ci") continue; // npm's own, not a script
      expect(PKG.scripts, `${where}: package.json has the script`).toHaveProperty([name!]);
      if (name === "start") {
        const config = demoConfig();
        expect(existsSync(join(REPO_ROOT, config)), `${where}: ${config} exists`).toBe(true);
        // "(examples/demo/herd.yaml)": the config the comment names is the one it serves.
        for (const named of claim.match(/[\w./-]+\.ya?ml/g) ?? []) {
          expect(named, `${where}: ${claim}`).toBe(config);
        }
      }
      if (name === "test" && /first run also installs/.test(claim)) {
        // npm runs `pretest` before `test`; it is what installs chromium, Go and Python deps.
        expect(PKG.scripts.pretest, `${where}: ${claim}`).toMatch(/scripts\/setup\.sh/);
        const setup = readFileSync(join(REPO_ROOT, "scripts/setup.sh"), "utf8");
        expect(setup).toMatch(/chromium/);
        expect(setup).toMatch(/pip install/);
        expect(setup).toMatch(/go mod download/);
      }
    }
  },
};

const cliKind: Kind = {
  name: "herd status / sessions / watch on the demo daemon",
  matches: (f) => allLinesStartWith(f, "bin/herd "),
  async run(f) {
    const d = await daemon(demoConfig());
    // The README runs these after its curl walkthrough, so there are sessions to show.
    for (const curl of BLOCKS.filter((b) => curlKind.matches(b))) await runCurlBlock(curl, d);
    const client = rpc(d);
    const live = (await client.listSessions({})).sessions;
    const pools = (await client.getStats({})).pools;
    expect(live.length, "the curl walkthrough left sessions").toBeGreaterThan(0);
    const env = { ...leak.env, HERD_ADDR: hostPort(d.controlUrl) };

    for (const [i, line] of lines(f).entries()) {
      const [command] = splitComment(line);
      const where = `${at(f, i)} \`${command}\``;
      const [, sub, arg] = /^bin\/herd (\S+)(?: (\S+))?$/.exec(command) ?? [];
      switch (sub) {
        case "status": {
          const r = await sh(command, env);
          expect(r.code, `${where}: ${r.stderr}`).toBe(0);
          for (const h of ["POOL", "WORKERS", "IDLE", "BUSY", "STARTING", "SESSIONS", "QUEUED"]) {
            expect(r.stdout, where).toContain(h);
          }
          for (const p of pools) expect(r.stdout, where).toMatch(new RegExp(`^${p.name}\\s`, "m"));
          expect(r.stdout, `${where}: node load`).toMatch(/load \d/);

          const j = await sh(`${command} --json`, env);
          expect(j.code, `${where} --json: ${j.stderr}`).toBe(0);
          const stats = JSON.parse(j.stdout) as {
            pools: { name: string; sessions: number }[];
            node: Record<string, unknown>;
          };
          expect(stats.pools.map((p) => p.name)).toEqual(pools.map((p) => p.name));
          expect(stats.pools.reduce((n, p) => n + p.sessions, 0)).toBe(live.length);
          expect(stats.node).toHaveProperty("memoryTotalBytes");
          expect(stats.node).toHaveProperty("load1");

          // --addr wins over HERD_ADDR (here pointing at a port nobody listens on).
          const dead = `127.0.0.1:${await freePort()}`;
          const a = await sh(`${command} --addr ${d.controlUrl}`, { ...leak.env, HERD_ADDR: dead });
          expect(a.code, `${where} --addr: ${a.stderr}`).toBe(0);
          const n = await sh(command, { ...leak.env, HERD_ADDR: dead });
          expect(n.code, "no daemon at HERD_ADDR fails").toBe(1);
          expect(n.stderr).toContain(`cannot reach the herd daemon at http://${dead}`);
          break;
        }
        case "sessions": {
          const r = await sh(command, env);
          expect(r.code, `${where}: ${r.stderr}`).toBe(0);
          for (const h of ["SESSION", "WORKER", "PID", "AGE", "CONNS"]) {
            expect(r.stdout, where).toContain(h);
          }
          for (const s of live) {
            expect(r.stdout, `${where}: row of ${s.sessionId}`).toMatch(
              new RegExp(`^${s.sessionId}\\s.*\\b${s.workerPid}\\b`, "m"),
            );
          }
          const j = await sh(`${command} --json`, env);
          expect(j.code, `${where} --json: ${j.stderr}`).toBe(0);
          const listed = (JSON.parse(j.stdout) as { sessions: { sessionId: string }[] }).sessions;
          expect(listed.map((s) => s.sessionId).sort()).toEqual(
            live.map((s) => s.sessionId).sort(),
          );
          break;
        }
        case "watch": {
          const job = launch(command, env);
          // The watcher prints nothing until something happens, and nothing says when it has
          // subscribed: acquire fresh sessions until one shows up in its output.
          const pool = live[0]!.pool;
          let shown: string | undefined;
          for (let n = 0; shown === undefined && n < 40; n++) {
            expect(job.child.exitCode, `${where} is still running: ${job.stderr()}`).toBeNull();
            const id = `readme-watch-${n}`;
            await client.acquireSession({ pool, sessionId: id });
            shown = await waitFor(
              `${id} in the watch output`,
              () =>
                job
                  .stdout()
                  .split("\n")
                  .find((l) => / session_acquired .*session=readme-watch-\d+\b/.test(l)),
              500,
            ).catch(() => undefined);
            await client.releaseSession({ sessionId: id });
          }
          expect(shown, `${where} showed an acquire: ${job.stderr()}`).toMatch(
            new RegExp(`#\\d+ session_acquired\\s+pool=${pool} session=readme-watch-\\d+`),
          );
          const exit = await interrupt(job);
          expect(exit, `${where} stops cleanly on Ctrl-C: ${job.stderr()}`).toEqual({
            code: 0,
            signal: null,
          });
          expect(job.stderr(), where).toBe("");

          // --json: one JSON object per line; the snapshot shows the live sessions.
          const shownLive = await watchSnapshot(`${command} --json --snapshot`, env);
          expect(shownLive.sort()).toEqual(live.map((s) => s.sessionId).sort());
          break;
        }
        case "logs": {
          // The walkthrough's two GET /counter of this session, as its worker printed them.
          expect(
            live.map((s) => s.sessionId),
            where,
          ).toContain(arg);
          const r = await sh(command, env);
          expect(r.code, `${where}: ${r.stderr}`).toBe(0);
          expect(r.stdout, where).toBe("counter is now 1\ncounter is now 2\n");
          break;
        }
        default:
          throw new Error(`${where}: no check knows the command "herd ${sub}"`);
      }
    }
  },
};

const configKind: Kind = {
  name: "config passes `herd config check`",
  matches: (f) => f.lang === "yaml",
  async run(f) {
    const file = join(tempDir(), "herd.yaml");
    writeFileSync(file, f.body);
    const r = await sh(`bin/herd config check ${file}`, leak.env);
    expect(r.code, `${at(f)}: ${r.stderr}`).toBe(0);
    const pools = Object.keys((parse(f.body) as { workers: object }).workers);
    for (const p of pools) expect(r.stdout, `${at(f)}: summary names pool ${p}`).toContain(p);
  },
};

const pythonKind: Kind = {
  name: "Python SDK snippet against a daemon",
  matches: (f) => f.lang === "python",
  async run(f) {
    const python = join(REPO_ROOT, ".venv/bin/python");
    if (!existsSync(python)) throw new Error(`${python} is missing: run bash scripts/setup.sh`);
    const DEFAULT_URL = "http://127.0.0.1:7070";
    expect(f.body, `${at(f)} talks to the default control plane`).toContain(DEFAULT_URL);
    const pool = /\.session\("([^"]+)"\)/.exec(f.body)?.[1];
    if (!pool) throw new Error(`${at(f)}: no client.session("POOL") call to serve a pool for`);
    // The snippet's pool, served by the fixture worker so no browser is needed.
    const d = await daemon({
      workers: {
        [pool]: {
          cmd: ["node", FIXTURE_WORKER, "--port", "{{.Port}}"],
          min: 0,
          max: 2,
          reuse: false,
          health_path: "/health",
        },
      },
    });
    const client = rpc(d);
    const script = join(tempDir(), "readme_example.py");
    const code = f.body.replaceAll(DEFAULT_URL, d.controlUrl);
    const runPython = async (source: string) => {
      writeFileSync(script, source);
      // From a temp dir, so `import herd` is the package installed in .venv.
      return sh(`${python} ${script}`, leak.env, { cwd: join(script, "..") });
    };

    const watch = await watchEvents(d, pool);
    try {
      const r = await runPython(code);
      expect(r.code, `${at(f)}: ${r.stderr}`).toBe(0);
      // print(s.id, s.proxy_url, s.headers)
      const m = /^(\S+) (\S+) (\{.*\})$/.exec(r.stdout.trim());
      expect(m, `${at(f)} prints id, proxy url and headers: ${r.stdout}`).not.toBeNull();
      const [, id, proxyUrl, headers] = m as unknown as [string, string, string, string];
      expect(id).toMatch(/^[A-Za-z0-9._:@-]{1,128}$/);
      expect(proxyUrl).toBe(d.dataUrl);
      expect(headers).toContain(`'X-Session-ID': '${id}'`);

      // The session lived in the snippet's pool and ended with the block.
      const types = (sid: string) =>
        watch.events.filter((e) => e.session?.sessionId === sid).map((e) => e.type);
      await waitFor(`the release of ${id}`, () =>
        types(id).includes(SessionEventType.SESSION_RELEASED) ? true : undefined,
      );
      expect(types(id)[0]).toBe(SessionEventType.SESSION_ACQUIRED);
      expect(watch.events.find((e) => e.session?.sessionId === id)?.session?.pool).toBe(pool);
      expect((await client.listSessions({})).sessions.map((s) => s.sessionId)).not.toContain(id);
      const cli = await sh(`bin/herd sessions --json --addr ${d.controlUrl}`, leak.env);
      expect(JSON.parse(cli.stdout)).toEqual({ sessions: [] });

      // "or if this process dies": the same snippet, killed inside its `with` block.
      const print = f.body.split("\n").find((l) => /^\s+print\(/.test(l));
      if (!print) throw new Error(`${at(f)}: no print( line inside the with block`);
      const indent = /^\s+/.exec(print)![0];
      const dying = code.replace(
        print,
        `${print}\n${indent}import os, sys; sys.stdout.flush(); os.kill(os.getpid(), 9)`,
      );
      const k = await runPython(dying);
      expect(k.signal ?? k.code, `killed python: ${k.stderr}`).not.toBe(0);
      const killedId = /^(\S+) /.exec(k.stdout.trim())?.[1];
      expect(killedId, `killed python printed its session first: ${k.stdout}`).toBeDefined();
      await waitFor(`the end of ${killedId}'s session after its holder died`, async () =>
        (await client.listSessions({})).sessions.some((s) => s.sessionId === killedId)
          ? undefined
          : true,
      );
    } finally {
      await watch.close();
    }
  },
};

const diagramKind: Kind = {
  name: "diagram names the demo's ports",
  matches: (f) => f.lang === "" && f.body.includes("──▶"),
  async run(f) {
    const config = demoConfig();
    const data = /data plane :(\d+)/.exec(f.body)?.[1];
    const control = /control plane :(\d+)/.exec(f.body)?.[1];
    expect(data, `${at(f)} names the data plane's port`).toBeDefined();
    expect(control, `${at(f)} names the control plane's port`).toBeDefined();
    expect(Number(data), `${at(f)} vs ${config}`).toBe(listenPort(config, "data"));
    expect(Number(control), `${at(f)} vs ${config}`).toBe(listenPort(config, "control"));
    expect(f.body).toContain("X-Session-ID");
  },
};

/** Whether something accepts TCP connections on 127.0.0.1:port (undefined: not yet). */
function accepts(port: number): Promise<true | undefined> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(undefined));
  });
}

/**
 * A shell session with background processes (README "Several nodes"): lines ending in `&` start
 * in order and each is up before the next line runs; `export` lines set the environment of the
 * lines after them; then curl and `herd cluster status` lines run and their comments are
 * checked. The README's fixed ports are moved to free ones, so the test never collides with
 * another daemon: `redis-server ... --port N &` gets a free port in place of N, a `bin/herd
 * serve --config FILE &` runs through startDaemon (that command, on a copy of FILE on free
 * ports; the cluster advertises those), and every later `localhost:PORT` / `127.0.0.1:PORT`
 * (and the CLI's default address) names the port that replaced PORT.
 */
const backgroundKind: Kind = {
  name: "background processes in order, then checked commands",
  matches: (f) => f.lang === "sh" && lines(f).some((l) => /\s&$/.test(splitComment(l)[0])),
  async run(f) {
    const ports = new Map<number, number>();
    const move = (text: string) =>
      text.replace(/\b(localhost|127\.0\.0\.1):(\d+)\b/g, (whole, host: string, port: string) => {
        const to = ports.get(Number(port));
        return to === undefined ? whole : `${host}:${to}`;
      });
    const env: Record<string, string> = { ...leak.env };
    const seen: Counter[] = [];
    let checked = 0;
    for (const [i, line] of lines(f).entries()) {
      const [command, claim] = splitComment(line);
      const where = `${at(f, i)} \`${command}\``;
      const background = /^(.*?)\s*&$/.exec(command)?.[1];
      const serve = background && /^bin\/herd serve --config (\S+)$/.exec(background)?.[1];
      const exported = /^export\s+(.+)$/.exec(command)?.[1];
      if (serve) {
        const d = await daemon(serve, env);
        for (const plane of ["control", "data"] as const) {
          const url = plane === "control" ? d.controlUrl : d.dataUrl;
          ports.set(listenPort(serve, plane), Number(new URL(url).port));
        }
      } else if (background !== undefined) {
        const port = /--port (\d+)\b/.exec(background)?.[1];
        if (!port) throw new Error(`${where}: no --port N to move to a free port`);
        const free = await freePort();
        ports.set(Number(port), free);
        jobs.push(launch(background.replace(`--port ${port}`, `--port ${free}`), env));
        await waitFor(`${where} to listen (on ${free})`, () => accepts(free), 15_000);
      } else if (exported) {
        for (const pair of exported.split(/\s+/)) {
          const m = /^([A-Z_][A-Z0-9_]*)=(\S+)$/.exec(pair);
          if (!m) throw new Error(`${where}: ${pair} is not NAME=value`);
          env[m[1]!] = move(m[2]!);
        }
      } else if (command.startsWith("curl ")) {
        await runCurlLine(move(command), claim, where, seen, env);
        checked++;
      } else if (/^bin\/herd cluster status\b/.test(command)) {
        await clusterStatusLine(move(command), claim, where, { ...env, ...cliAddr(ports) });
        checked++;
      } else {
        throw new Error(`${where}: no check knows this line`);
      }
    }
    expect(checked, `${at(f, -1)}: the block checks something`).toBeGreaterThan(0);
  },
};

/** HERD_ADDR for a CLI line without --addr: the daemon now on the default address's port. */
function cliAddr(ports: Map<number, number>): Record<string, string> {
  const port = ports.get(Number(/:(\d+)$/.exec(DEFAULT_ADDR)?.[1]));
  if (port === undefined) throw new Error(`no daemon was started on the CLI's ${DEFAULT_ADDR}`);
  return { HERD_ADDR: `127.0.0.1:${port}` };
}

/** `herd cluster status # rows for node-a, node-b ..., each running pool P`: every node named
 * has its row, running that pool. Node records arrive with their renewal, so it is polled. */
async function clusterStatusLine(
  command: string,
  claim: string,
  where: string,
  env: Record<string, string>,
): Promise<void> {
  const nodes = claim.match(/\bnode-[\w-]+/g) ?? [];
  const pool = /\bpool (\S+)/.exec(claim)?.[1];
  expect(nodes.length, `${where}: the claim ${JSON.stringify(claim)} names nodes`).toBeGreaterThan(
    0,
  );
  expect(pool, `${where}: the claim ${JSON.stringify(claim)} names a pool`).toBeDefined();
  const rows = (out: string) =>
    nodes.every((n) => new RegExp(`^${n}\\s.*\\s${pool}\\s`, "m").test(out));
  let last = "";
  await waitFor(
    `${where}: ${claim}`,
    async () => {
      const r = await sh(command, env);
      expect(r.code, `${where}: ${r.stderr}`).toBe(0);
      last = r.stdout;
      return rows(last) ? true : undefined;
    },
    15_000,
  ).catch((err: Error) => {
    throw new Error(`${err.message}; last output:\n${last}`);
  });
  expect(last, where).toMatch(new RegExp(`^CLUSTER POOL.*\\n${pool}\\s+${nodes.length}\\s`, "m"));
}

const KINDS = [diagramKind, npmKind, curlKind, cliKind, configKind, pythonKind, backgroundKind];

// ---- the suite -----------------------------------------------------------------------------

describe("README.md", () => {
  it("has only blocks this test knows how to run, each of exactly one kind", () => {
    const problems = BLOCKS.flatMap((f) => {
      const kinds = KINDS.filter((k) => k.matches(f));
      if (kinds.length === 1) return [];
      const what = `${at(f, -1)}: \`\`\`${f.lang} block starting ${JSON.stringify(lines(f)[0] ?? "")}`;
      return kinds.length === 0
        ? [`${what}: no test runs it; teach test/readme.spec.ts this kind of block`]
        : [`${what}: matches ${kinds.map((k) => k.name).join(" and ")}`];
    });
    if (problems.length > 0) throw new Error(problems.join("\n"));
    expect(BLOCKS.length).toBeGreaterThan(0);
  });

  for (const f of BLOCKS) {
    const kind = KINDS.find((k) => k.matches(f));
    if (kind) it(`${at(f, -1)}: ${kind.name}`, () => kind.run(f), TEST_TIMEOUT);
  }

  it("names only npm scripts and files that exist", () => {
    for (const [, name] of README.matchAll(/`npm (?:run )?([\w:-]+)/g)) {
      if (["install", "ci", "pack"].includes(name!)) continue; // npm's own, not scripts
      expect(PKG.scripts, `README names \`npm ${name}\``).toHaveProperty([name!]);
    }
    for (const [, path] of README.matchAll(/`(?:bash|node) ([\w./-]+\.(?:sh|mjs|js))`/g)) {
      expect(existsSync(join(REPO_ROOT, path!)), `README names ${path}`).toBe(true);
    }
    for (const [, path] of README.matchAll(/\]\(([\w./-]+)\)/g)) {
      expect(existsSync(join(REPO_ROOT, path!)), `README links ${path}`).toBe(true);
    }
  });

  it(
    "the Playwright one-liner connects as written, to the smallest config's run-server",
    async () => {
      const python = join(REPO_ROOT, ".venv/bin/python");
      const line = /`(p\.chromium\.connect\("ws:\/\/127\.0\.0\.1:8080\/",[^`]*\))`/
        .exec(README)?.[1]
        ?.replaceAll("\n", " ");
      expect(line, "README's p.chromium.connect(...) line").toBeDefined();
      const config = BLOCKS.find((f) => f.lang === "yaml" && f.body.includes("run-server"));
      expect(config, "README's Playwright config").toBeDefined();
      const doc = parse(config!.body) as { workers: Record<string, { cmd: string[] }> };
      for (const pool of Object.values(doc.workers)) {
        // "On a host without Playwright's own browsers (...) append "--unsafe" to cmd": this one.
        pool.cmd.push("--unsafe");
      }
      const d = await daemon(doc as Record<string, unknown>);
      // In the URL: the run-server is contained (network egress) and reaches nothing here.
      const page = inlinePage("readme one-liner");
      const script = join(tempDir(), "connect.py");
      writeFileSync(
        script,
        [
          "import sys",
          "from playwright.sync_api import sync_playwright",
          "with sync_playwright() as p:",
          `    browser = ${line!.replace("ws://127.0.0.1:8080/", `${d.dataUrl.replace(/^http/, "ws")}/`)}`,
          "    tab = browser.new_page()",
          "    tab.goto(sys.argv[1])",
          "    print(tab.title())",
          "    browser.close()",
          "",
        ].join("\n"),
      );
      const r = await sh(`${python} ${script} '${page}'`, leak.env);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe("readme one-liner\n");
    },
    TEST_TIMEOUT,
  );

  it(
    '--token / HERD_TOKEN reach a daemon that wants a token ("Every command takes ...")',
    async () => {
      const token = `readme-${leak.tag.slice(0, 8)}`;
      const d = await daemon({
        control: { token },
        workers: {
          fixture: {
            cmd: ["node", FIXTURE_WORKER, "--port", "{{.Port}}"],
            min: 0,
            max: 1,
            health_path: "/health",
          },
        },
      });
      const env = { ...leak.env, HERD_ADDR: hostPort(d.controlUrl) };
      for (const cmd of ["bin/herd status", "bin/herd sessions", "bin/herd watch --snapshot"]) {
        const refused = await sh(cmd, env);
        expect(refused.code, `${cmd} without a token`).toBe(1);
        expect(refused.stderr).toContain("Pass --token or set HERD_TOKEN");
        if (cmd.includes("watch")) continue; // with a token: below, once there is a session

        const flag = await sh(`${cmd} --json --token ${token}`, env);
        expect(flag.code, `${cmd} --token: ${flag.stderr}`).toBe(0);
        JSON.parse(flag.stdout);
        const viaEnv = await sh(`${cmd} --json`, { ...env, HERD_TOKEN: token });
        expect(viaEnv.code, `${cmd} with HERD_TOKEN: ${viaEnv.stderr}`).toBe(0);
        // Same answer either way (the node's load figures move between two calls).
        const same = (text: string) => ({ ...JSON.parse(text), node: undefined });
        expect(same(viaEnv.stdout)).toEqual(same(flag.stdout));
      }
      const r = await fetch(`${d.controlUrl}/herd.v1.HerdService/AcquireSession`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
        body: JSON.stringify({ pool: "fixture", sessionId: "with-token" }),
      });
      expect(r.status, await r.text()).toBe(200);
      const shown = await watchSnapshot("bin/herd watch --snapshot --json", {
        ...env,
        HERD_TOKEN: token,
      });
      expect(shown).toEqual(["with-token"]);
    },
    TEST_TIMEOUT,
  );
});
