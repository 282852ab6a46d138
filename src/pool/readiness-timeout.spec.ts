// A start that times out says why it may have: a worker listening on another port than the
// one herd gave it (a cmd that never uses {{.Port}} or $PORT) is told apart from one that
// listens nowhere yet and from one that listens on its port but does not answer.

import { afterEach, describe, expect, it } from "vitest";
import { herdFixture } from "../../test/helpers/herd.ts";
import { freePort } from "../../test/helpers/ports.ts";

const fx = herdFixture();
afterEach(() => fx.cleanup());

/** A node worker that listens on `listen` (a port, or "PORT": herd's) and never answers. */
function listener(listen: number | "PORT"): string[] {
  const port = listen === "PORT" ? "Number(process.env.PORT)" : String(listen);
  return [
    process.execPath,
    "-e",
    `require("node:net").createServer(() => {}).listen(${port}, "127.0.0.1")`,
  ];
}

// Generous: the worker must have bound its port by then even on a loaded machine.
const START_TIMEOUT_MS = 8_000;

describe("a start that times out", () => {
  it("names where the tree listens when it is not the worker's port", async () => {
    const other = await freePort();
    const herd = await fx.start({
      command: listener(other),
      max: 1,
      startTimeoutMs: START_TIMEOUT_MS,
    });
    const failure = herd.acquire("w", "s").catch((err: Error) => err.message);
    expect(await failure).toMatch(
      new RegExp(
        `not ready within ${START_TIMEOUT_MS} ms: nothing in its process tree listens on port \\d+ \\(it listens on 127\\.0\\.0\\.1:${other} — does cmd use \\{\\{\\.Port\\}\\} or \\$PORT\\?\\)`,
      ),
    );
  });

  it("says it listens nowhere, and keeps the plain message for a worker slow on its own port", async () => {
    const herd = await fx.start(
      {
        name: "nowhere",
        command: [process.execPath, "-e", "setInterval(() => {}, 1e6)"],
        max: 1,
        startTimeoutMs: 1_000,
      },
      { name: "mute", command: listener("PORT"), max: 1, startTimeoutMs: START_TIMEOUT_MS },
    );
    expect(await herd.acquire("nowhere", "a").catch((err: Error) => err.message)).toMatch(
      /not ready within 1000 ms: nothing in its process tree listens on any port \(waiting for GET \/health on port \d+\)/,
    );
    expect(await herd.acquire("mute", "b").catch((err: Error) => err.message)).toMatch(
      new RegExp(
        `not ready within ${START_TIMEOUT_MS} ms \\(waiting for GET /health on port \\d+\\)`,
      ),
    );
  });
});
