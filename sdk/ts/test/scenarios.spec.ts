// The SDK scenario suite: the same steps, through each SDK's public API (TypeScript, Python,
// Go), against one live daemon (bin/herd serve) with real worker processes and the real data
// plane. Each SDK has a driver program printing JSON lines (scenario-driver.ts,
// sdk/python/tests/scenario_driver.py, sdk/go/internal/scenariodriver); this spec runs them
// and checks what they saw and what became of the processes. Python and Go dependencies are
// installed here (repo .venv, go build), so it runs from a fresh clone.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type Daemon,
  expectNoLeaks,
  newLeakTag,
  pidAlive,
  REPO_ROOT,
  startDaemon,
  waitForPidsGone,
} from "../../../test/helpers/index.ts";
import { createHerdClient } from "../src/index.ts";

const POOL = "sdk";
const README_POOL = "demo";
const tag = newLeakTag();
const buildDir = mkdtempSync(join(tmpdir(), "herd-sdk-scenarios-"));
const venvPython = join(REPO_ROOT, ".venv/bin/python");
const goDriver = join(buildDir, "scenariodriver");

const drivers: Record<string, (args: string[]) => [string, string[]]> = {
  ts: (args) => [
    process.execPath,
    ["--import", "tsx", join(REPO_ROOT, "sdk/ts/test/scenario-driver.ts"), ...args],
  ],
  python: (args) => [venvPython, [join(REPO_ROOT, "sdk/python/tests/scenario_driver.py"), ...args]],
  go: (args) => [goDriver, args],
};

let daemon: Daemon;

/** True when .venv imports `herd` from this checkout (an editable install of sdk/python). */
function pythonSdkInstalled(): boolean {
  try {
    const file = execFileSync(venvPython, ["-c", "import herd; print(herd.__file__)"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    });
    return file.trim() === join(REPO_ROOT, "sdk/python/src/herd/__init__.py");
  } catch {
    return false;
  }
}

beforeAll(async () => {
  if (!existsSync(venvPython)) execFileSync("python3", ["-m", "venv", join(REPO_ROOT, ".venv")]);
  if (!pythonSdkInstalled()) {
    const sdk = join(REPO_ROOT, "sdk/python");
    execFileSync(venvPython, ["-m", "pip", "install", "--quiet", "-e", sdk]);
  }
  execFileSync("go", ["build", "-o", goDriver, "./internal/scenariodriver"], {
    cwd: join(REPO_ROOT, "sdk/go"),
  });
  daemon = await startDaemon({
    config: {
      workers: {
        // The README snippets' pool: the bundled demo worker, which answers "/".
        [README_POOL]: {
          cmd: ["node", join(REPO_ROOT, "examples/demo/worker.mjs"), "--port", "{{.Port}}"],
          min: 0,
          max: 2,
          reuse: false,
        },
        [POOL]: {
          cmd: ["node", join(REPO_ROOT, "test/fixtures/worker.mjs"), "--port", "{{.Port}}"],
          min: 1,
          max: 6,
          reuse: false,
          health_path: "/health",
          // The drivers compare the pid a worker reports with the session's worker_pid (the
          // host's): a PID namespace would renumber the first. These specs are about the SDKs.
          isolation: "none",
        },
      },
    },
    env: tag.env,
  });
}, 300_000);

afterAll(async () => {
  await daemon?.stop();
  rmSync(buildDir, { recursive: true, force: true });
  await expectNoLeaks(tag.tag);
});

interface Running {
  child: ChildProcess;
  /** The driver's first JSON line. */
  first: Promise<Record<string, unknown>>;
}

/** `on`: another daemon than the suite's; `env`: more of the driver's environment. */
function startDriver(
  sdk: string,
  step: string,
  { on = daemon, env = {} }: { on?: Daemon; env?: Record<string, string> } = {},
): Running {
  const [cmd, args] = drivers[sdk]!([step, on.controlUrl, POOL]);
  const child = spawn(cmd, args, {
    cwd: REPO_ROOT,
    env: { ...process.env, ...tag.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr!.on("data", (b: Buffer) => {
    stderr += b.toString();
  });
  const first = new Promise<Record<string, unknown>>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once("line", (l) => resolve(JSON.parse(l)));
    child.once("exit", (code, signal) =>
      reject(new Error(`${sdk} driver ${step} exited (${code ?? signal}): ${stderr}`)),
    );
  });
  return { child, first };
}

async function runDriver(
  sdk: string,
  step: string,
  opts?: Parameters<typeof startDriver>[2],
): Promise<Record<string, unknown>> {
  const { child, first } = startDriver(sdk, step, opts);
  try {
    return await first;
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      await new Promise((r) => child.once("exit", r));
    }
  }
}

const control = () => createHerdClient({ baseUrl: daemon.controlUrl, timeoutMs: 10_000 });
const liveIds = async () => (await control().sessions()).map((s) => s.sessionId);

describe.each(Object.keys(drivers))("%s SDK against the live daemon", (sdk) => {
  it("acquire → the data plane reaches one stable worker → release", async () => {
    const r = (await runDriver(sdk, "identity")) as {
      session: string;
      workerPid: number;
      pids: number[];
    };
    expect(r.pids).toEqual([r.workerPid, r.workerPid, r.workerPid]);
    expect(await liveIds()).not.toContain(r.session);
    // reuse: false, so the released worker's process is killed.
    expect(await waitForPidsGone([r.workerPid], 10_000)).toEqual([]);
  });

  it("unknown pool and invalid ID raise the typed error", async () => {
    expect(await runDriver(sdk, "errors")).toEqual({
      unknownPool: "not_found",
      invalidId: "invalid_argument",
    });
  });

  it("watch sees acquired, released and lost, in order", async () => {
    const { events } = (await runDriver(sdk, "watch")) as { events: [string, string][] };
    // Connection and worker events interleave; the session lifecycle must be exactly this.
    expect(events.filter(([type]) => type.startsWith("SESSION_"))).toEqual([
      ["SESSION_ACQUIRED", "a"],
      ["SESSION_RELEASED", "a"],
      ["SESSION_ACQUIRED", "b"],
      ["SESSION_LOST", "b"],
    ]);
  });

  it("tail_logs shows the session's worker output and follows a later line; usage counts its bytes", async () => {
    const r = (await runDriver(sdk, "logs-usage")) as {
      logged: boolean;
      followed: boolean;
      rx: number;
      tx: number;
      cpuKnown: boolean;
    };
    expect(r).toMatchObject({ logged: true, followed: true, cpuKnown: true });
    expect(r.rx).toBeGreaterThan(100); // two request heads at least
    expect(r.tx).toBeGreaterThan(100);
  });

  it("a held session ends, and its worker dies, when the client is SIGKILLed", async () => {
    const { child, first } = startDriver(sdk, "hold");
    try {
      const { held, workerPid } = (await first) as { held: string; workerPid: number };
      expect(await liveIds()).toContain(held);
      expect(pidAlive(workerPid)).toBe(true);
      child.kill("SIGKILL");
      await expect.poll(liveIds, { timeout: 10_000, interval: 50 }).not.toContain(held);
      expect(await waitForPidsGone([workerPid], 10_000)).toEqual([]);
    } finally {
      child.kill("SIGKILL");
    }
  });
});

// A tenant key is the control plane's bearer token (here the daemon's control.token: the
// server's own tenant keys are not this spec's business) and goes to the data plane as
// X-Herd-Key in every session's headers. A recording server stands in for the data plane to
// show exactly what the SDK sends; one request through the real data plane shows the headers
// reach the session's worker.
describe("a tenant key", () => {
  const KEY = `key-${randomUUID()}`;
  let keyed: Daemon;
  let recorder: Server;
  const seen = new Map<string, IncomingHttpHeaders>();

  beforeAll(async () => {
    keyed = await startDaemon({
      config: {
        control: { token_env: "HERD_SCENARIO_TOKEN" },
        workers: {
          [POOL]: {
            cmd: ["node", join(REPO_ROOT, "test/fixtures/worker.mjs"), "--port", "{{.Port}}"],
            max: 3,
            health_path: "/health",
            isolation: "none",
          },
        },
      },
      env: { ...tag.env, HERD_SCENARIO_TOKEN: KEY },
    });
    recorder = createServer((req, res) => {
      seen.set(req.url ?? "", req.headers);
      res.end("recorded");
    });
    await new Promise<void>((r) => recorder.listen(0, "127.0.0.1", r));
  }, 120_000);

  afterAll(async () => {
    recorder?.close();
    await keyed?.stop();
  });

  it.each(Object.keys(drivers))(
    "%s: the bearer token on the control plane, X-Herd-Key on the data plane",
    async (sdk) => {
      const { port } = recorder.address() as AddressInfo;
      const r = (await runDriver(sdk, "tenant-key", {
        on: keyed,
        env: { HERD_SCENARIO_KEY: KEY, HERD_SCENARIO_RECORDER: `http://127.0.0.1:${port}` },
      })) as { sessions: Record<string, string>; reached: boolean };
      // Every acquire and hold went through: the daemon wants its token, and the key was it.
      expect(Object.keys(r.sessions).length).toBeGreaterThanOrEqual(2);
      for (const [path, id] of Object.entries(r.sessions)) {
        expect(seen.get(`/${path}`)).toMatchObject({ "x-session-id": id, "x-herd-key": KEY });
      }
      expect(r.reached).toBe(true);
    },
  );
});

// The README of each SDK shows it in about ten lines; those exact lines run here, with only
// the control URL, the pool name and (TS) the package path swapped for this test's.
function readmeSnippet(file: string, lang: string): string {
  const text = readFileSync(join(REPO_ROOT, file), "utf8");
  const block = new RegExp(`\`\`\`${lang}\n([\\s\\S]*?)\`\`\``).exec(text)?.[1];
  if (block === undefined) throw new Error(`${file} has no \`\`\`${lang} block`);
  return block
    .replaceAll("http://127.0.0.1:7070", daemon.controlUrl)
    .replaceAll('"browser"', `"${README_POOL}"`)
    .replaceAll('"@herd/client"', JSON.stringify(join(REPO_ROOT, "sdk/ts/src/index.ts")));
}

function run(cmd: string, args: string[], cwd = REPO_ROOT): string {
  return execFileSync(cmd, args, {
    cwd,
    env: { ...process.env, ...tag.env, GOFLAGS: "-mod=mod" },
    encoding: "utf8",
    timeout: 120_000,
  });
}

describe("README snippets run as written", () => {
  it("TypeScript", async () => {
    const file = join(buildDir, "readme.mts");
    writeFileSync(file, readmeSnippet("sdk/ts/README.md", "ts"));
    expect(run(process.execPath, ["--import", "tsx", file])).toMatch(/^\S+ \d+ 200\n$/);
  });

  it("Python", async () => {
    const file = join(buildDir, "readme.py");
    writeFileSync(file, readmeSnippet("sdk/python/README.md", "python"));
    expect(run(venvPython, [file])).toMatch(/^\S+ 200\n0\n$/);
  });

  it("Go", async () => {
    const dir = join(buildDir, "readme-go");
    mkdirSync(dir);
    writeFileSync(join(dir, "main.go"), readmeSnippet("sdk/go/README.md", "go"));
    // The README's way in from a checkout: a `replace` directive in the user's own module.
    run("go", ["mod", "init", "example.com/readme"], dir);
    const setup = readmeSnippet("sdk/go/README.md", "sh").replaceAll("/path/to/herd", REPO_ROOT);
    run("bash", ["-euc", setup], dir);
    expect(readFileSync(join(dir, "go.mod"), "utf8")).toMatch(
      /\nreplace github\.com\/herd-dev\/herd\/sdk\/go => \S+\/sdk\/go"?\n/,
    );
    expect(run("go", ["run", "."], dir)).toMatch(/^\S+ 200\n$/);
  });
});
