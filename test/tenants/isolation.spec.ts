// Tenants (issue 20) with the real daemon, real keys and the generated clients: a tenant key
// sees and acts on its own sessions only — another tenant's or the operator's session is
// NOT_FOUND to it on every RPC — uses only its pools, sees only its own stats row and cannot
// drain the node; the operator's token sees everything, each session naming its tenant.

import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SessionEvent } from "../../gen/herd/v1/herd_pb.ts";
import { SessionEventType } from "../../gen/herd/v1/herd_pb.ts";
import type { Protocol } from "../helpers/control-plane-harness.ts";
import {
  Code,
  clientOf,
  code,
  failure,
  KEYS,
  startTenantDaemon,
  type TenantDaemon,
} from "./helpers.ts";

let d: TenantDaemon;
beforeAll(async () => {
  d = await startTenantDaemon({
    acme: { key_env: "KEY_ACME", pools: ["web"] },
    beta: { key_env: "KEY_BETA" },
  });
});
afterAll(async () => {
  await d?.stop();
});

describe("tenant keys in the daemon", () => {
  it("are gone from its environ, where a worker of its uid could read them", () => {
    const environ = readFileSync(`/proc/${d.daemon.pid}/environ`, "latin1");
    expect(environ).toContain(d.tag); // the daemon's own environ, read after start
    for (const key of [KEYS.acme, KEYS.beta, KEYS.operator]) expect(environ).not.toContain(key);
  });
});

describe.each<Protocol>(["connect-h1", "grpc"])("tenant isolation over %s", (protocol) => {
  it("a tenant key sees and acts on its own sessions only, on every RPC", async () => {
    const op = clientOf(protocol, d.daemon, KEYS.operator);
    const acme = clientOf(protocol, d.daemon, KEYS.acme);
    const beta = clientOf(protocol, d.daemon, KEYS.beta);
    const p = protocol; // ids per protocol: the two runs share one daemon
    const mine = (await acme.acquireSession({ sessionId: `${p}-a1` })).session!;
    const theirs = (await beta.acquireSession({ sessionId: `${p}-b1` })).session!;
    const ops = (await op.acquireSession({ sessionId: `${p}-o1` })).session!;
    expect([mine.tenant, theirs.tenant, ops.tenant]).toEqual(["acme", "beta", ""]);

    // ListSessions: its own only; the operator's lists all three, each naming its tenant.
    const listed = (await acme.listSessions({})).sessions.map((s) => s.sessionId);
    expect(listed).toEqual([`${p}-a1`]);
    const all = (await op.listSessions({})).sessions.filter((s) => s.sessionId.startsWith(p));
    expect(Object.fromEntries(all.map((s) => [s.sessionId, s.tenant]))).toEqual({
      [`${p}-a1`]: "acme",
      [`${p}-b1`]: "beta",
      [`${p}-o1`]: "",
    });

    // Even with the hold's own id (which only its holder is told) another's hold is not renewed.
    const held = beta.holdSession({ sessionId: theirs.sessionId })[Symbol.asyncIterator]();
    const { holdId } = (await held.next()).value!;
    expect(await code(acme.renewHold({ sessionId: theirs.sessionId, holdId }))).toBe(Code.NotFound);
    expect(await code(beta.renewHold({ sessionId: theirs.sessionId, holdId }))).toBe("ok");
    await held.return?.();

    for (const other of [theirs.sessionId, ops.sessionId]) {
      const notFound = await failure(acme.releaseSession({ sessionId: other }));
      expect(notFound.code).toBe(Code.NotFound);
      // The same words as for an id nobody holds: nothing tells the two apart.
      const unknown = await failure(op.releaseSession({ sessionId: `${other}-nobody` }));
      expect(notFound.rawMessage).toBe(unknown.rawMessage.replace("-nobody", ""));
      // AcquireSession of its id neither returns it nor makes another.
      expect(await code(acme.acquireSession({ sessionId: other }))).toBe(Code.NotFound);
      expect(await code(acme.acquireSession({ sessionId: other, pool: "web" }))).toBe(
        Code.NotFound,
      );
      const hold = acme.holdSession({ sessionId: other, attachOnly: true });
      expect(await code(hold[Symbol.asyncIterator]().next())).toBe(Code.NotFound);
      const hold2 = acme.holdSession({ sessionId: other });
      expect(await code(hold2[Symbol.asyncIterator]().next())).toBe(Code.NotFound);
      expect(await code(acme.renewHold({ sessionId: other, holdId: "x" }))).toBe(Code.NotFound);
      const logs = acme.tailSessionLogs({ sessionId: other });
      expect(await code(logs[Symbol.asyncIterator]().next())).toBe(Code.NotFound);
    }
    // Nothing of the others' ended or changed hands.
    const after = (await op.listSessions({})).sessions.filter((s) => s.sessionId.startsWith(p));
    expect(after.map((s) => [s.sessionId, s.workerPid]).sort()).toEqual(
      all.map((s) => [s.sessionId, s.workerPid]).sort(),
    );

    // WatchSessions: the snapshot and the events are its own sessions' only.
    const ctl = new AbortController();
    const seen: SessionEvent[] = [];
    const watch = (async () => {
      for await (const e of acme.watchSessions({ snapshot: true }, { signal: ctl.signal })) {
        seen.push(e);
        if (e.type === SessionEventType.SESSION_ACQUIRED && e.sessionId === `${p}-a2`) return;
      }
    })();
    await expect
      .poll(() => seen.some((e) => e.type === SessionEventType.SNAPSHOT_COMPLETE), {
        timeout: 30_000,
      })
      .toBe(true);
    await beta.acquireSession({ sessionId: `${p}-b2` });
    await op.acquireSession({ sessionId: `${p}-o2` });
    await acme.acquireSession({ sessionId: `${p}-a2` });
    await watch;
    ctl.abort();
    const ids = seen.map((e) => e.sessionId).filter((id) => id !== "");
    expect(new Set(ids)).toEqual(new Set([`${p}-a1`, `${p}-a2`]));
    expect(seen.filter((e) => e.sessionId !== "").every((e) => e.tenant === "acme")).toBe(true);
    // A watch of another's id shows nothing of it either.
    const ctl2 = new AbortController();
    const peek: SessionEvent[] = [];
    const watch2 = (async () => {
      try {
        for await (const e of acme.watchSessions(
          { snapshot: true, sessionId: `${p}-b1` },
          { signal: ctl2.signal },
        ))
          peek.push(e);
      } catch {}
    })();
    await expect.poll(() => peek.length, { timeout: 30_000 }).toBe(1);
    await beta.releaseSession({ sessionId: `${p}-b1` });
    await acme.releaseSession({ sessionId: `${p}-a2` }); // an event the watch would not show anyway
    ctl2.abort();
    await watch2;
    expect(peek.map((e) => e.type)).toEqual([SessionEventType.SNAPSHOT_COMPLETE]);

    // GetStats: its own row, its own pools.
    const stats = await acme.getStats({});
    expect(stats.tenants.map((t) => [t.name, t.pools])).toEqual([["acme", ["web"]]]);
    expect(stats.pools.map((s) => s.name)).toEqual(["web"]);
    expect(stats.clusterNodes).toEqual([]);
    expect((await op.getStats({})).tenants.map((t) => t.name)).toEqual(["acme", "beta"]);

    // Its pools only; DrainNode and RestartNode are the operator's.
    expect((await failure(acme.acquireSession({ pool: "gpu" }))).code).toBe(Code.PermissionDenied);
    expect(await code(acme.getStats({ pool: "gpu" }))).toBe(Code.PermissionDenied);
    expect(await code(acme.drainNode({}))).toBe(Code.PermissionDenied);
    expect(await code(acme.restartNode({}))).toBe(Code.PermissionDenied);

    // A key nobody holds is refused; its own session it releases.
    const stranger = clientOf(protocol, d.daemon, `${KEYS.acme}x`);
    expect(await code(stranger.listSessions({}))).toBe(Code.Unauthenticated);
    await acme.releaseSession({ sessionId: `${p}-a1` });
    for (const id of [`${p}-b2`, `${p}-o1`, `${p}-o2`]) await op.releaseSession({ sessionId: id });
  });
});
