// Tenants in a 2-node cluster (real redis-server, two `herd serve` nodes, real keys): a tenant's
// session placed on the other node is still its own (the tenant travels with the forwarded
// acquire and in the cluster's session records), another tenant's session on either node is
// NOT_FOUND to it, and max_sessions counts the tenant's sessions on every node; every node takes
// from one acquire_rate bucket per tenant (in Redis).

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCluster, type TestCluster, workerPool } from "../cluster/cluster-harness.ts";
import { Code, clientOf, code, failure, KEYS } from "./helpers.ts";

let c: TestCluster;
beforeAll(async () => {
  const node = (name: string) => ({
    node: name,
    pools: { w: workerPool({ max: 2, min: 0 }) },
    control: { token_env: "HERD_OP" },
    env: {
      HERD_OP: KEYS.operator,
      KEY_ACME: KEYS.acme,
      KEY_BETA: KEYS.beta,
      KEY_RATED: KEYS.rated,
    },
    config: {
      tenants: {
        acme: { key_env: "KEY_ACME", max_sessions: 3 },
        beta: { key_env: "KEY_BETA" },
        rated: { key_env: "KEY_RATED", acquire_rate: "2/m" },
      },
    },
  });
  c = await startCluster([node("node-a"), node("node-b")]);
});
afterAll(async () => {
  await c?.cleanup();
});

describe("tenants in a cluster", () => {
  it("a tenant's sessions are its own on every node, and its quota counts them all", async () => {
    const [a, b] = c.nodes as [(typeof c.nodes)[0], (typeof c.nodes)[0]];
    const acmeA = clientOf("connect-h1", a, KEYS.acme);
    const acmeB = clientOf("connect-h1", b, KEYS.acme);
    const betaB = clientOf("connect-h1", b, KEYS.beta);
    const opB = clientOf("connect-h1", b, KEYS.operator);
    // Node a has room for two; the third is placed on node b, forwarded with its tenant.
    const got = [];
    for (const id of ["q1", "q2", "q3"])
      got.push((await acmeA.acquireSession({ sessionId: id })).session!);
    expect(got.map((s) => [s.node, s.tenant])).toEqual([
      ["node-a", "acme"],
      ["node-a", "acme"],
      ["node-b", "acme"],
    ]);
    // Node b knows all three, each acme's.
    await expect
      .poll(
        async () =>
          (await opB.listSessions({})).sessions.map((s) => `${s.sessionId}:${s.tenant}`).sort(),
        {
          timeout: 30_000,
        },
      )
      .toEqual(["q1:acme", "q2:acme", "q3:acme"]);
    expect((await acmeB.listSessions({})).sessions.map((s) => s.sessionId).sort()).toEqual([
      "q1",
      "q2",
      "q3",
    ]);
    // Another tenant sees none of them and cannot end one, on the node that does not run it.
    expect((await betaB.listSessions({})).sessions).toEqual([]);
    expect(await code(betaB.releaseSession({ sessionId: "q1" }))).toBe(Code.NotFound);
    expect(await code(betaB.acquireSession({ sessionId: "q1" }))).toBe(Code.NotFound);
    // Node b has a free worker, but acme holds 3 of its 3 across the cluster.
    const over = await failure(acmeB.acquireSession({ sessionId: "q4" }));
    expect(over.code).toBe(Code.ResourceExhausted);
    expect(over.rawMessage).toContain("max_sessions (3)");
    // Its own session on the other node it ends from here.
    await acmeB.releaseSession({ sessionId: "q1" });
    await expect
      .poll(async () => (await opB.listSessions({})).sessions.length, { timeout: 30_000 })
      .toBe(2);
    await acmeB.acquireSession({ sessionId: "q4" });
    for (const id of ["q2", "q3", "q4"]) await opB.releaseSession({ sessionId: id });
  });

  it("acquire_rate is one bucket for the whole cluster", async () => {
    const [a, b] = c.nodes as [(typeof c.nodes)[0], (typeof c.nodes)[0]];
    const ratedA = clientOf("connect-h1", a, KEYS.rated);
    const ratedB = clientOf("connect-h1", b, KEYS.rated);
    await ratedA.acquireSession({ sessionId: "r1" });
    await ratedB.acquireSession({ sessionId: "r2" });
    // Each node alone has taken one of its 2/m; the cluster has taken both.
    const over = await failure(ratedB.acquireSession({ sessionId: "r3" }));
    expect(over.code).toBe(Code.ResourceExhausted);
    expect(over.rawMessage).toMatch(/^tenant rated is over its acquire_rate \(2\/m\): retry in /);
    expect(await code(ratedA.acquireSession({ sessionId: "r3" }))).toBe(Code.ResourceExhausted);
    // Each from its own node: another node learns of a session through Redis, a moment later.
    await ratedA.releaseSession({ sessionId: "r1" });
    await ratedB.releaseSession({ sessionId: "r2" });
  });
});
