// scripts/setup-go.sh on a throwaway root (its own copy of the script and of sdk/go/go.mod), with
// a stand-in `go` on PATH: a Go as old as Debian's is refused and replaced, a missing way to get
// one fails at once naming what is missing, and a toolchain zip that does not match the pinned
// hash is never installed. (The real download from the Go module proxy is what `npm test`'s
// setup does on a machine without Go; no test here reaches beyond loopback.)
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { REPO_ROOT, runCaptured } from "../test/helpers/index.ts";

let root: string;
let server: Server | undefined;

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "herd-setup-go-"));
  mkdirSync(join(root, "scripts"));
  mkdirSync(join(root, "sdk/go"), { recursive: true });
  mkdirSync(join(root, "fake-bin"));
  cpSync(join(REPO_ROOT, "scripts/setup-go.sh"), join(root, "scripts/setup-go.sh"));
  cpSync(join(REPO_ROOT, "sdk/go/go.mod"), join(root, "sdk/go/go.mod"));
});

afterEach(() => {
  server?.close();
  server = undefined;
  rmSync(root, { recursive: true, force: true });
});

/** A `go` on PATH that says it is `version`. */
function fakeGo(version: string): void {
  const go = join(root, "fake-bin/go");
  writeFileSync(go, `#!/bin/sh\necho "go version go${version} linux/amd64"\n`);
  chmodSync(go, 0o755);
}

const setupGo = (env: Record<string, string>) =>
  runCaptured("bash", [join(root, "scripts/setup-go.sh")], {
    cwd: root,
    env: { PATH: `${join(root, "fake-bin")}:/usr/bin:/bin`, ...env },
  });

it("keeps a Go on PATH that is new enough", async () => {
  fakeGo("1.99.0");
  const r = await setupGo({ GOPROXY: "off" });
  expect(r.code).toBe(0);
  expect(r.stderr).toMatch(/go 1\.99\.0 on PATH .* is new enough \(sdk\/go needs 1\.\d+/);
  expect(existsSync(join(root, ".tools/go"))).toBe(false);
});

it("refuses Debian's Go and, with no proxy to fetch from, says what the machine needs", async () => {
  fakeGo("1.19.8");
  const r = await setupGo({ GOPROXY: "off" });
  expect(r.code).toBe(1);
  expect(r.stderr).toContain("GOPROXY (off) names no proxy to fetch the toolchain from");
  expect(r.stderr).toMatch(/the Go SDK needs Go 1\.\d+\.\d+ or newer \(sdk\/go\/go\.mod\)/);
  expect(r.stderr).toMatch(/put Go ≥ 1\.\d+\.\d+ on PATH \(https:\/\/go\.dev\/dl\)/);
});

it("fetches golang.org/toolchain from GOPROXY, and installs nothing whose hash is not the pinned one", async () => {
  // A well-formed module zip holding something else than the pinned toolchain.
  const zip = join(root, "other.zip");
  const made = await runCaptured("python3", [
    "-c",
    "import sys, zipfile; zipfile.ZipFile(sys.argv[1], 'w').writestr('golang.org/toolchain@v0/bin/go', '#!/bin/sh\\n')",
    zip,
  ]);
  expect(made.code).toBe(0);
  const asked: string[] = [];
  server = createServer((req, res) => {
    asked.push(req.url ?? "");
    res.end(readFileSync(zip));
  });
  await new Promise<void>((r) => server!.listen(0, "127.0.0.1", r));
  const proxy = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const r = await setupGo({ GOPROXY: `${proxy},direct` });
  expect(r.code).not.toBe(0);
  expect(asked).toEqual([
    expect.stringMatching(
      /^\/golang\.org\/toolchain\/@v\/v0\.0\.1-go1\.\d+\.\d+\.linux-(amd64|arm64)\.zip$/,
    ),
  ]);
  expect(r.stderr).toMatch(/setup-go: fetching go1\.\d+\.\d+ .* into \.tools\/go/);
  expect(r.stderr).toMatch(/setup-go: checksum mismatch for golang\.org\/toolchain@v0\.0\.1-go/);
  expect(r.stderr).toMatch(/setup-go: checksum mismatch for golang\.org\/toolchain@v0\.0\.1-go/);
  expect(existsSync(join(root, ".tools/go"))).toBe(false);
});
