// What a command loads decides how fast it starts (issue 13: `herd --version` and `herd status`
// in ≤ 150 ms). Timings belong to bench/runtime.ts; this checks the cause, which does not
// depend on the machine's load: the Node built-ins each command ends up loading.
import { expect, it } from "vitest";
import { HERD_BIN } from "../../test/helpers/daemon.ts";
import { runCaptured } from "../../test/helpers/index.ts";

/** Runs bin/herd with args and returns the Node built-ins it loaded (process.moduleLoadList). */
async function builtinsLoaded(args: string[]): Promise<Set<string>> {
  const report =
    'process.on("exit", () => process.stderr.write("\\nLOADED " + JSON.stringify(process.moduleLoadList)));';
  const r = await runCaptured(process.execPath, [
    "--import",
    `data:text/javascript,${encodeURIComponent(report)}`,
    HERD_BIN,
    ...args,
  ]);
  const line = r.stderr.split("\n").find((l) => l.startsWith("LOADED "));
  expect(line, r.stderr).toBeDefined();
  const list = JSON.parse(line!.slice("LOADED ".length)) as string[];
  return new Set(list.map((m) => m.replace(/^NativeModule /, "")));
}

it("herd --version loads none of the daemon or its clients", async () => {
  const loaded = await builtinsLoaded(["--version"]);
  // (node:net it may load: stdout and stderr are sockets when they are pipes.)
  for (const daemonOnly of ["http", "child_process", "crypto"]) {
    expect(loaded.has(daemonOnly), daemonOnly).toBe(false);
  }
});

it("herd status loads node:http but not the Connect runtime (its http2 import, and undici for Headers)", async () => {
  // No daemon at this address: the call fails after everything it needs is loaded.
  const loaded = await builtinsLoaded(["status", "--addr", "127.0.0.1:1"]);
  expect(loaded.has("http")).toBe(true);
  expect(loaded.has("http2")).toBe(false);
  expect(loaded.has("internal/deps/undici/undici")).toBe(false);
});
