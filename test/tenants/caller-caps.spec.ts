// The caps on what one caller holds open (control.max_watchers_per_caller) count a tenant
// key's calls as that tenant's: two tenants calling from one address have a cap each, and a
// tenant cannot get round its cap by calling from another address.

import { afterEach, describe, expect, it } from "vitest";
import { Code, clientOf, failure, KEYS, startTenantDaemon, type TenantDaemon } from "./helpers.ts";

let t: TenantDaemon | undefined;
const calls: AbortController[] = [];
afterEach(async () => {
  for (const c of calls.splice(0)) c.abort();
  await t?.stop();
  t = undefined;
});

/** Opens a watch and waits for its first message; it stays open until the test ends. */
async function watching(client: ReturnType<typeof clientOf>): Promise<void> {
  const call = new AbortController();
  calls.push(call);
  const stream = client.watchSessions({ snapshot: true }, { signal: call.signal });
  const first = await stream[Symbol.asyncIterator]().next();
  if (first.done) throw new Error("the watch ended at once");
}

describe("caps per tenant", () => {
  it("a tenant's watchers count against its own cap, not its address's", async () => {
    t = await startTenantDaemon(
      { acme: { key_env: "KEY_ACME" }, beta: { key_env: "KEY_BETA" } },
      { control: { token_env: "HERD_OP", max_watchers_per_caller: 2 } },
    );
    const acme = clientOf("connect-h1", t.daemon, KEYS.acme);
    await watching(acme);
    await watching(clientOf("grpc", t.daemon, KEYS.acme));
    const over = await failure(watching(acme));
    expect(over.code).toBe(Code.ResourceExhausted);
    expect(over.rawMessage).toContain("control.max_watchers_per_caller (2)");
    // Same address, another tenant: its own cap.
    const beta = clientOf("connect-h1", t.daemon, KEYS.beta);
    await watching(beta);
    await watching(beta);
    expect((await failure(watching(beta))).code).toBe(Code.ResourceExhausted);
    // The operator, from the same address, is not counted with either tenant.
    await watching(clientOf("connect-h1", t.daemon, KEYS.operator));
  });
});
