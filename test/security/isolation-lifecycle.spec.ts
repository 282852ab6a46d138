// An isolated worker's life through the pool engine: it gets its stop grace like any other
// (its sandbox's root must not take it down early), its uid is never shared by two live
// workers and goes back once its tree is gone, and nothing is left after close.

import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { Agent, get } from "node:http";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { workerEndpoint } from "../../src/core/index.ts";
import { Herd, type PoolOptionsInput, resolvePoolOptions } from "../../src/pool/index.ts";
import { type LauncherOptions, sandboxLauncher } from "../../src/sandbox/index.ts";
import {
  descendants,
  expectNoLeaks,
  killAllWithTag,
  newLeakTag,
  WORKER_FIXTURE,
} from "../helpers/index.ts";
import { expectNoIsolationLeaks, processesInUidRange } from "./isolation-harness.ts";

const leak = newLeakTag();
const realUid = (pid: number) =>
  Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]);
/** Every range this file's pools use (its own, apart from the other spec files'). */
const ALL_RANGES: [number, number] = [250_000, 252_999];
const herds: Herd[] = [];

afterEach(async () => {
  await Promise.all(herds.splice(0).map((h) => h.close()));
  try {
    await expectNoLeaks(leak.tag);
    await expectNoIsolationLeaks(ALL_RANGES, process.pid);
  } finally {
    killAllWithTag(leak.tag);
  }
}, 60_000);

async function start(...pools: Partial<PoolOptionsInput>[]): Promise<Herd> {
  return startWith({}, ...pools);
}

async function startWith(
  launcher: LauncherOptions,
  ...pools: Partial<PoolOptionsInput>[]
): Promise<Herd> {
  const herd = await Herd.start(
    pools.map((overrides) =>
      resolvePoolOptions({
        name: "w",
        command: [process.execPath, WORKER_FIXTURE],
        healthPath: "/health",
        isolation: {
          user: "auto",
          uidRange: [250_000, 250_999],
          network: "private",
          filesystem: "private",
        },
        ...overrides,
        env: { ...leak.env, ...overrides.env },
      }),
    ),
    { sandbox: sandboxLauncher(launcher) },
  );
  herds.push(herd);
  return herd;
}

describe("an isolated worker", () => {
  it("gets its stop grace: SIGTERM reaches the worker, not a sandbox that kills it at once", async () => {
    const herd = await start({ min: 1, stopGraceMs: 1_500, env: { WORKER_IGNORE_SIGTERM: "1" } });
    const started = performance.now();
    await herd.close();
    // Without the fix the sandbox's root died of SIGTERM and took the worker down in ~50 ms.
    expect(performance.now() - started).toBeGreaterThan(1_000);
  }, 30_000);

  it("never shares its uid with another live worker, and gives it back when gone", async () => {
    const range: [number, number] = [251_000, 251_003];
    const herd = await start({
      max: 3,
      reuse: false,
      isolation: { user: "auto", network: "private", uidRange: range },
    });
    // 4 uids for 3 live workers plus a prepared spare: 12 sessions in turn only get theirs if
    // every uid goes back once its worker's tree is gone (else: uid_range exhausted).
    for (let round = 0; round < 4; round++) {
      const sessions = await Promise.all([0, 1, 2].map((i) => herd.acquire("w", `r${round}-${i}`)));
      const inRange = new Set(processesInUidRange(range));
      const uids = sessions.map((s) => {
        const tree = [s.workerPid, ...descendants(s.workerPid)].filter((p) => inRange.has(p));
        const own = new Set(tree.map(realUid));
        expect(own.size, "one uid per worker").toBe(1);
        return [...own][0];
      });
      expect(new Set(uids).size, "no two live workers share a uid").toBe(3);
      await Promise.all(sessions.map((s) => herd.release(s.id)));
    }
  }, 60_000);

  it("never shares a uid with a worker of another pool drawing on the same range", async () => {
    const range: [number, number] = [252_000, 252_009];
    const isolation = { user: "auto", network: "private", uidRange: range } as const;
    const herd = await start({ name: "a", isolation }, { name: "b", isolation });
    const [a, b] = [await herd.acquire("a", "sa"), await herd.acquire("b", "sb")];
    const inRange = new Set(processesInUidRange(range));
    const uidOf = (pid: number) =>
      new Set([pid, ...descendants(pid)].filter((p) => inRange.has(p)).map(realUid));
    const [ua, ub] = [uidOf(a.workerPid), uidOf(b.workerPid)];
    expect(ua.size).toBe(1);
    expect(ub.size).toBe(1);
    expect([...ua][0]).not.toBe([...ub][0]);
  }, 60_000);

  // Eight connections open at once, each with a request answered: the native relay pairs them
  // in its one process; socat (the fallback where the native relay was not built) forks one
  // process per connection, eight more in the tree while they are open.
  for (const [relay, forks] of [
    ["native", false],
    ["socat", true],
  ] as const) {
    it(`is reached through its relay (${relay}), which ${forks ? "forks" : "forks nothing"} per connection`, async () => {
      const herd = await startWith(relay === "socat" ? { relay } : {}, {});
      const s = await herd.acquire("w", "relayed");
      const endpoint = workerEndpoint(s.workerAddress);
      expect("socketPath" in endpoint, "a private network is reached through its relay").toBe(true);
      const before = descendants(s.workerPid).length;
      const agent = new Agent({ keepAlive: true, maxSockets: 8 });
      try {
        const answers = await Promise.all(
          Array.from(
            { length: 8 },
            () =>
              new Promise<number>((resolve, reject) => {
                get({ ...endpoint, path: "/health", agent }, (res) => {
                  res.resume();
                  res.on("end", () => resolve(res.statusCode ?? 0));
                }).on("error", reject);
              }),
          ),
        );
        expect(answers).toEqual(Array(8).fill(200));
        const open = Object.values(agent.freeSockets).flat().length;
        expect(open, "the connections are still open").toBe(8);
        // (Not exactly 8 for socat: a fork of the readiness probe's connection may still be
        // exiting in `before`.)
        const added = descendants(s.workerPid).length - before;
        if (forks) expect(added).toBeGreaterThanOrEqual(6);
        else expect(added).toBe(0);
      } finally {
        agent.destroy();
      }
      // A burst of new connections, as the data plane opens them for a burst of new clients:
      // a full listen backlog refuses a Unix socket's connect (EAGAIN), which the data plane
      // answers 502 (socat's default backlog of 5 did).
      const burst = await Promise.allSettled(
        Array.from(
          { length: 64 },
          () =>
            new Promise<number>((resolve, reject) => {
              get({ ...endpoint, path: "/health", agent: false }, (res) => {
                res.resume();
                res.on("end", () => resolve(res.statusCode ?? 0));
              }).on("error", reject);
            }),
        ),
      );
      expect(burst.filter((r) => r.status === "rejected").map((r) => String(r.reason))).toEqual([]);
    }, 30_000);
  }

  it("removes the sandbox directories a SIGKILLed daemon left behind", async () => {
    const dead = spawnSync("true").pid!;
    // This version's layout, and an older herd's.
    const orphans = [`/run/herd-sandbox/${dead}-orphan`, `/run/herd-sandbox-${dead}-orphan`];
    for (const orphan of orphans) mkdirSync(join(orphan, "1", "relay"), { recursive: true });
    await start({ min: 1 });
    for (const orphan of orphans) expect(existsSync(orphan), orphan).toBe(false);
  }, 30_000);
});
