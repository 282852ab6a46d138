// A contained worker's WebSocket tunnel passes one relay, not two: the data plane's upstream
// connection is made inside the worker's network namespace by the relay there (its dial socket,
// native/tunnel-relay's listen mode) and passed out, so once the tunnel is handed to herd's own
// relay the in-namespace relay carries none of its bytes. Measured from outside: the relay
// process's own read and write counts (/proc/<pid>/io) do not grow with the tunnel's traffic
// (before dials they grew by every message, twice: 800 KiB here). A real daemon, default containment, the
// fixture worker's /ws echo through the data plane; everything is gone afterwards.

import { readFileSync } from "node:fs";
import { afterAll, beforeAll, expect, it } from "vitest";
import { WebSocket } from "ws";
import {
  cmdline,
  type Daemon,
  descendants,
  newLeakTag,
  startDaemon,
  WORKER_FIXTURE,
} from "../helpers/index.ts";
import { stopContained, type UidRange, uidRangeKey } from "./isolation-harness.ts";

const leak = newLeakTag();
const UID_RANGE: UidRange = [233_010, 233_019];
let daemon: Daemon;

beforeAll(async () => {
  daemon = await startDaemon({
    config: {
      workers: {
        boxed: {
          cmd: ["node", WORKER_FIXTURE],
          health_path: "/health",
          max: 1,
          env: leak.env,
          isolation: { uid_range: uidRangeKey(UID_RANGE) },
        },
      },
    },
    env: leak.env,
  });
}, 90_000);

afterAll(async () => {
  expect(await stopContained(daemon, leak.tag, UID_RANGE)).toEqual({ code: 0, signal: null });
}, 60_000);

/** Bytes the process has read and written through syscalls, so far. */
function io(pid: number): number {
  const text = readFileSync(`/proc/${pid}/io`, "utf8");
  const count = (key: string) => Number(new RegExp(`^${key}: (\\d+)$`, "m").exec(text)![1]);
  return count("rchar") + count("wchar");
}

it("carries a contained session's WebSocket past the relay in the worker's namespace", async () => {
  const ws = new WebSocket(`${daemon.dataUrl.replace("http", "ws")}/s/dial-1/ws`, {
    headers: { "X-Herd-Pool": "boxed" },
  });
  const inbox: string[] = [];
  ws.on("message", (m) => inbox.push(String(m)));
  await expect.poll(() => inbox.length, { timeout: 30_000 }).toBeGreaterThan(0);
  expect(inbox[0]).toMatch(/^hello \d+$/);

  // The relays in the workers' namespaces (the session's and a prepared spare's):
  // `<relay dir>/tunnel-relay --listen …` (the shell that started one names it too).
  const relays = descendants(daemon.pid).filter((pid) =>
    /\/tunnel-relay --listen$/.test(cmdline(pid).split(" ").slice(0, 2).join(" ")),
  );
  expect(relays.length, "in-namespace relays").toBeGreaterThan(0);
  const moved = () => relays.reduce((sum, pid) => sum + io(pid), 0);
  const before = moved();

  const message = "m".repeat(4096);
  for (let i = 0; i < 50; i++) {
    ws.send(`${i} ${message}`);
    await expect.poll(() => inbox.includes(`${i} ${message}`), { timeout: 10_000 }).toBe(true);
  }
  // 50 messages of 4 KiB each way: through the relay that is 800 KiB of its reads and writes.
  expect(moved() - before, "bytes the in-namespace relays moved").toBeLessThan(50 * 4096);
  ws.close();
}, 60_000);
