// A burst of new client connections to one contained worker's session: every request is
// answered. Each new client connection may need a new upstream connection through the relay
// into the worker's private network, all at once: socat listened with a backlog of 5, so a
// burst past it had connects refused (EAGAIN) and answered 502; herd's native relay listens
// with the kernel's usual backlog and pairs connections without forking.

import { get } from "node:http";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type Daemon, newLeakTag, startDaemon } from "../helpers/index.ts";
import { hostilePool, stopContained, type UidRange, uidRangeKey } from "./isolation-harness.ts";

const leak = newLeakTag();
const UID_RANGE: UidRange = [233_000, 233_009];
let daemon: Daemon;

beforeAll(async () => {
  daemon = await startDaemon({
    config: {
      workers: {
        boxed: { ...hostilePool(leak.env), isolation: { uid_range: uidRangeKey(UID_RANGE) } },
      },
    },
    env: leak.env,
  });
}, 90_000);

afterAll(async () => {
  expect(await stopContained(daemon, leak.tag, UID_RANGE)).toEqual({ code: 0, signal: null });
}, 60_000);

/** The status of one GET on a connection of its own. */
function status(session: string): Promise<number> {
  return new Promise((resolve, reject) => {
    get(
      `${daemon.dataUrl}/health`,
      { agent: false, headers: { "X-Session-ID": session, "X-Herd-Pool": "boxed" } },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      },
    )
      .setTimeout(10_000, function (this: { destroy(e: Error): void }) {
        this.destroy(new Error("no answer within 10 s"));
      })
      .on("error", reject);
  });
}

it("answers a burst of 64 new connections to one contained worker, every one", async () => {
  expect(await status("burst"), "the session's first request").toBe(200);
  for (let round = 0; round < 3; round++) {
    const statuses = await Promise.all(Array.from({ length: 64 }, () => status("burst")));
    expect(
      statuses.filter((s) => s !== 200),
      `round ${round}`,
    ).toEqual([]);
  }
}, 60_000);
