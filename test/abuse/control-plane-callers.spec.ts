// What one caller may hold open on the control plane (issue 20): WatchSessions and HoldSession
// streams are capped per caller (control.max_watchers_per_caller, max_holds_per_caller), so
// one client can no longer open them without bound over as many connections as it likes.
// Past the cap a call fails RESOURCE_EXHAUSTED naming the setting; the caller's open streams
// go on, another caller (another client address) is not affected, and a stream that ends
// gives its slot back.

import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterEach, describe, expect, it } from "vitest";
import { HerdService } from "../../gen/herd/v1/herd_pb.ts";
import { type Harness, herdClient, startHarness } from "../helpers/control-plane-harness.ts";

let h: Harness | undefined;
const calls: AbortController[] = [];
afterEach(async () => {
  for (const c of calls.splice(0)) c.abort();
  await h?.close();
  h = undefined;
});

/** A client calling from another loopback address: another caller. */
function clientFrom(localAddress: string, baseUrl: string) {
  return createClient(
    HerdService,
    createConnectTransport({ baseUrl, httpVersion: "1.1", nodeOptions: { localAddress } }),
  );
}

/** Opens a stream and waits for its first message; the stream stays open until the test ends. */
async function opened<T>(open: (signal: AbortSignal) => AsyncIterable<T>): Promise<T> {
  const call = new AbortController();
  calls.push(call);
  const first = await open(call.signal)[Symbol.asyncIterator]().next();
  if (first.done) throw new Error("the stream ended at once");
  return first.value;
}

async function refusal(p: Promise<unknown>): Promise<ConnectError> {
  try {
    await p;
  } catch (err) {
    return ConnectError.from(err);
  }
  throw new Error("the call was not refused");
}

describe("streams one caller may hold open", () => {
  it("caps a caller's WatchSessions streams across connections, not another caller's", async () => {
    h = await startHarness([{}], { maxWatchersPerCaller: 3 });
    const url = h.cp.url;
    // Three watchers of one caller, each on its own connection (grpc, Connect h1 and h2).
    const watch = (c: ReturnType<typeof herdClient>) =>
      opened((signal) => c.watchSessions({ snapshot: true }, { signal }));
    await watch(herdClient("grpc", url));
    await watch(herdClient("connect-h1", url));
    const third = new AbortController();
    await opened((signal) =>
      herdClient("connect-h2", url).watchSessions(
        { snapshot: true },
        { signal: AbortSignal.any([signal, third.signal]) },
      ),
    );
    const over = await refusal(watch(herdClient("grpc", url)));
    expect(over.code).toBe(Code.ResourceExhausted);
    expect(over.rawMessage).toContain("control.max_watchers_per_caller (3)");
    // Another address is another caller.
    expect((await watch(clientFrom("127.0.0.2", url))).type).toBeDefined();
    // One of the three ends: its slot is back.
    third.abort();
    let again: ConnectError | undefined;
    for (let tries = 0; tries < 100; tries++) {
      again = await watch(herdClient("grpc", url)).then(
        () => undefined,
        (err: unknown) => ConnectError.from(err),
      );
      if (again === undefined) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(again).toBeUndefined();
  });

  it("caps a caller's HoldSession streams, and a refused hold acquires nothing", async () => {
    h = await startHarness([{ max: 4 }], { maxHoldsPerCaller: 2 });
    const c = herdClient("grpc", h.cp.url);
    for (const id of ["h1", "h2"]) {
      await opened((signal) => c.holdSession({ sessionId: id }, { signal }));
    }
    const over = await refusal(opened((signal) => c.holdSession({ sessionId: "h3" }, { signal })));
    expect(over.code).toBe(Code.ResourceExhausted);
    expect(over.rawMessage).toContain("control.max_holds_per_caller (2)");
    const { sessions } = await c.listSessions({});
    expect(sessions.map((s) => s.sessionId).sort()).toEqual(["h1", "h2"]);
    // Another caller holds a session of its own.
    const other = clientFrom("127.0.0.2", h.cp.url);
    const held = await opened((signal) => other.holdSession({ sessionId: "h4" }, { signal }));
    expect(held.kind.case).toBe("session");
  });
});
