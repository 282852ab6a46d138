// The packages as a user gets them, outside this checkout: `npm pack` makes herd's and
// @herd/client's tarballs, a fresh project in the temp dir installs both (registry only for
// their dependencies, from npm's cache when it has them), the daemon runs as `npx herd serve`,
// and the SDK READMEs' snippets run with plain `node` (the TypeScript one compiled the way a
// user's build would, by tsc's transpiler) and with a venv that has only the Python SDK's
// built wheel. The Go SDK's snippet already runs from a module outside the repo, through a
// `replace` directive (sdk/ts/test/scenarios.spec.ts).
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import ts from "typescript";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  cmdline,
  type Daemon,
  descendants,
  expectNoLeaks,
  killAllWithTag,
  newLeakTag,
  REPO_ROOT,
  runCaptured,
  startDaemon,
} from "./helpers/index.ts";
import { fences } from "./readme/fences.ts";

const tag = newLeakTag();
const work = mkdtempSync(join(tmpdir(), "herd-packages-"));
// Workers run under uids of their own (contained by default): the installed code must be
// reachable by other users, as anywhere a user installs herd for a daemon to run.
chmodSync(work, 0o755);
const project = join(work, "project");
const README_URL = "http://127.0.0.1:7070";
let daemon: Daemon | undefined;
/** What `npm install` of the tarballs said on stderr (its warnings). */
let installWarnings = "";
const MANIFESTS = ["package.json", "sdk/ts/package.json"].map((f) => join(REPO_ROOT, f));
let manifestsBefore: string[] = [];

/** Runs a command to its end; fails the test with its output unless it exits 0. */
async function ok(command: string, args: string[], cwd: string): Promise<string> {
  const r = await runCaptured(command, args, { cwd, env: tag.env });
  if (r.code !== 0) {
    throw new Error(
      `\`${command} ${args.join(" ")}\` in ${cwd}: exit ${r.code}\n${r.stderr}${r.stdout}`,
    );
  }
  return r.stdout;
}

/** `npm pack` in dir; returns the tarball's path (npm prints its file name last). */
async function pack(dir: string): Promise<string> {
  const out = await ok("npm", ["pack", "--pack-destination", work], dir);
  return join(work, out.trim().split("\n").at(-1)!);
}

/** The first ```lang block of an SDK README, talking to the test daemon instead. */
function snippet(readme: string, lang: string): string {
  const block = fences(readFileSync(join(REPO_ROOT, readme), "utf8"), readme).find(
    (f) => f.lang === lang,
  );
  if (!block) throw new Error(`${readme} has no \`\`\`${lang} block`);
  expect(block.body, `${readme} talks to the default control address`).toContain(README_URL);
  return block.body.replaceAll(README_URL, daemon!.controlUrl);
}

beforeAll(async () => {
  mkdirSync(project);
  manifestsBefore = MANIFESTS.map((f) => readFileSync(f, "utf8"));
  const tarballs = await Promise.all([pack(REPO_ROOT), pack(join(REPO_ROOT, "sdk/ts"))]);
  writeFileSync(
    join(project, "package.json"),
    `${JSON.stringify({ name: "herd-user", private: true, type: "module" }, null, 2)}\n`,
  );
  const installed = await runCaptured(
    "npm",
    ["install", "--prefer-offline", "--no-audit", "--no-fund", ...tarballs],
    { cwd: project, env: tag.env },
  );
  if (installed.code !== 0)
    throw new Error(`npm install: exit ${installed.code}\n${installed.stderr}`);
  installWarnings = installed.stderr;
  // The pool the READMEs name, running the bundled demo worker (answers "/").
  copyFileSync(join(REPO_ROOT, "examples/demo/worker.mjs"), join(project, "worker.mjs"));
  daemon = await startDaemon({
    command: ["npx", "herd"],
    cwd: project,
    config: {
      workers: {
        browser: { cmd: ["node", join(project, "worker.mjs"), "--port", "{{.Port}}"], max: 2 },
      },
    },
    env: tag.env,
  });
}, 600_000);

afterAll(async () => {
  try {
    if (daemon) {
      // npm exec does not pass SIGTERM on to the command it runs; a terminal's Ctrl-C or a
      // supervisor signals the whole process group, and so does this (npx leads the group).
      process.kill(-daemon.pid, "SIGTERM");
      await daemon.exited;
      expect(daemon.stdout(), "`npx herd serve` shuts down cleanly").toContain(
        '"msg":"herd stopped"',
      );
    }
    await expectNoLeaks(tag.tag, { withinMs: 10_000 });
  } finally {
    killAllWithTag(tag.tag);
    rmSync(work, { recursive: true, force: true });
  }
}, 60_000);

describe("installed from npm pack tarballs", () => {
  it("herd runs from its own package: the compiled bundle, no sources, no tsx", async () => {
    const installed = join(project, "node_modules/herd");
    expect(readdirSync(installed).sort()).toEqual([
      "README.md",
      "bin",
      "dist",
      "examples",
      "native",
      "package.json",
      "scripts",
    ]);
    expect(readdirSync(join(installed, "scripts"))).toEqual(["setup-native.sh"]);
    expect(readdirSync(join(project, "node_modules"))).not.toContain("tsx");
    const version = JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")).version;
    expect(await ok("npx", ["herd", "--version"], project)).toBe(`herd ${version}\n`);
    // The running daemon is that package's bin (npx runs it as its child), not this checkout's.
    const commands = [daemon!.pid, ...descendants(daemon!.pid)].map(cmdline);
    expect(commands.filter((c) => c.includes(join(project, "node_modules/")))).not.toEqual([]);
    expect(commands.filter((c) => c.includes(join(REPO_ROOT, "bin/herd")))).toEqual([]);
  });

  it("packs without install scripts (no allowScripts warning), leaving the checkout as it was", async () => {
    for (const pkg of ["herd", "@herd/client"]) {
      const manifest = JSON.parse(
        readFileSync(join(project, "node_modules", pkg, "package.json"), "utf8"),
      ) as { scripts?: Record<string, string> };
      const lifecycle = ["preinstall", "install", "postinstall", "prepare"];
      expect(
        Object.keys(manifest.scripts ?? {}).filter((s) => lifecycle.includes(s)),
        pkg,
      ).toEqual([]);
    }
    expect(installWarnings).not.toMatch(/allowScripts|install-scripts/);
    // The checkout keeps its own `prepare` (npm install builds dist/ there), byte for byte.
    expect(MANIFESTS.map((f) => readFileSync(f, "utf8"))).toEqual(manifestsBefore);
    for (const tarball of ["herd-0.1.0.tgz", "sdk/ts/herd-client-0.1.0.tgz"]) {
      const ignored = await runCaptured("git", ["check-ignore", "-q", tarball], { cwd: REPO_ROOT });
      expect(ignored.code, `${tarball} is gitignored`).toBe(0);
    }
  });

  it("builds its native relay where it was installed, with the script it ships", async () => {
    const installed = join(project, "node_modules/herd");
    const built = await runCaptured("bash", [join(installed, "scripts/setup-native.sh")], {
      cwd: project,
    });
    expect(built.code, built.stderr).toBe(0);
    // Where the package's own code looks for it (core/native-relay-binary.ts).
    const relay = join(installed, ".tools/native/tunnel-relay");
    const usage = await runCaptured(relay, [], { cwd: project });
    expect(usage.stderr).toContain("tunnel-relay --listen");
  });

  it("with no config, names the demo config it ships, and that config checks out", async () => {
    const empty = join(work, "empty");
    mkdirSync(empty);
    const r = await runCaptured(join(project, "node_modules/.bin/herd"), ["serve"], {
      cwd: empty,
      env: tag.env,
    });
    expect(r.code).toBe(2);
    const demo = /pass --config FILE \((\S+) is a working start\)/.exec(r.stderr)?.[1];
    expect(demo, r.stderr).toBe(join(project, "node_modules/herd/examples/demo/herd.yaml"));
    expect(await ok("npx", ["herd", "config", "check", demo!], project)).toContain("OK");
  });

  it("@herd/client imports by name with types, and the README snippet runs with plain node", async () => {
    const pkg = join(project, "node_modules/@herd/client");
    expect(readdirSync(join(pkg, "dist/src"))).toContain("index.d.ts");
    const js = ts.transpileModule(snippet("sdk/ts/README.md", "ts"), {
      compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext },
    }).outputText;
    writeFileSync(join(project, "readme.mjs"), js);
    expect(await ok("node", ["readme.mjs"], project)).toMatch(/^\S+ \d+ 200\n$/);
    // The plain JavaScript form, as written.
    writeFileSync(join(project, "readme-plain.mjs"), snippet("sdk/ts/README.md", "js"));
    expect(await ok("node", ["readme-plain.mjs"], project)).toMatch(/^\S+ \d+ 200\n$/);
  });
});

describe("Python SDK from its built wheel", () => {
  it("installs into a fresh venv and runs the README snippet", async () => {
    const wheels = join(work, "wheels");
    const venv = join(work, "venv");
    await ok(
      join(REPO_ROOT, ".venv/bin/python"),
      ["-m", "pip", "wheel", "--quiet", "--no-deps", "-w", wheels, join(REPO_ROOT, "sdk/python")],
      work,
    );
    const wheel = readdirSync(wheels).find((f) => f.endsWith(".whl"));
    expect(wheel, "pip wheel made a wheel").toBeDefined();
    await ok("python3", ["-m", "venv", venv], work);
    await ok(join(venv, "bin/pip"), ["install", "--quiet", join(wheels, wheel!)], work);
    const python = join(venv, "bin/python");
    const where = await ok(python, ["-c", "import herd; print(herd.__file__)"], work);
    expect(where.startsWith(join(venv, "lib")), `herd comes from the wheel: ${where}`).toBe(true);
    writeFileSync(join(work, "readme.py"), snippet("sdk/python/README.md", "python"));
    expect(await ok(python, ["readme.py"], work)).toMatch(/^\S+ 200\n0\n$/);
  });
});
