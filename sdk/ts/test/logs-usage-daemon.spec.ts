// The SDK's usage and tailLogs against the real control plane and pool (not the stub): a
// session's worker output since it began, followed live, and what the session used.

import { afterEach, describe, expect, it } from "vitest";
import { type Harness, startHarness } from "../../../test/helpers/control-plane-harness.ts";
import { createHerdClient } from "../src/index.ts";

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

/** Makes the session's worker write `line` on stderr (the harness has no data plane). */
async function say(address: string, line: string): Promise<void> {
  const res = await fetch(`http://${address}/control/stderr?line=${encodeURIComponent(line)}`, {
    method: "POST",
  });
  expect(res.status).toBe(200);
  await res.arrayBuffer();
}

describe("HerdClient.tailLogs and usage against the daemon", () => {
  it("tails a session's worker output, follows a later line, and reports its usage", async () => {
    h = await startHarness([{ reuse: false }]);
    const herd = createHerdClient({ baseUrl: h.cp.url });
    const s = await herd.acquire("w");
    const address = h.herd.lookup(s.id)!.workerAddress;
    await say(address, "before the tail");

    const stop = new AbortController();
    let text = "";
    const followed = (async () => {
      for await (const piece of herd.tailLogs(s.id, { follow: true, signal: stop.signal })) {
        text += Buffer.from(piece).toString();
      }
    })();
    const deadline = Date.now() + 15_000;
    const until = async (what: string) => {
      while (!text.includes(what)) {
        if (Date.now() > deadline) throw new Error(`no ${JSON.stringify(what)} in ${text}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    await until("before the tail\n");
    await say(address, "after the tail began");
    await until("after the tail began\n");
    stop.abort();
    await followed;

    const usage = await herd.usage(s.id);
    expect(usage).toBeDefined();
    expect(usage!.rxBytes).toBe(0n); // no data plane in this harness
    expect(await herd.usage("no-such-session")).toBeUndefined();
    await s.release();
    await expect(
      (async () => {
        for await (const _ of herd.tailLogs(s.id)) {
        }
      })(),
    ).rejects.toThrow(/no live session/);
  });
});
