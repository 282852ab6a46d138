// examples/cluster: the three bundled node configs, run as written (both planes moved to free
// ports by the test helper; advertise follows them) on a real redis-server: one session,
// reached through every node's data plane, is one worker; `herd cluster status` lists all
// three nodes. Every process is gone afterwards.

import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, expect, it } from "vitest";
import { type RedisServer, SECRET, startRedis } from "../../test/cluster/cluster-harness.ts";
import { type Daemon, HERD_BIN, startDaemon } from "../../test/helpers/daemon.ts";
import { eventually } from "../../test/helpers/herd.ts";
import { expectNoLeaks, killAllWithTag, newLeakTag } from "../../test/helpers/processes.ts";

const DIR = fileURLToPath(new URL(".", import.meta.url));
const leak = newLeakTag();
let redis: RedisServer | undefined;
const nodes: Daemon[] = [];

afterEach(async () => {
  const exits = await Promise.all(nodes.splice(0).map((d) => d.stop()));
  await redis?.stop();
  try {
    await expectNoLeaks(leak.tag);
  } finally {
    killAllWithTag(leak.tag);
  }
  for (const exit of exits) expect(exit).toEqual({ code: 0, signal: null });
});

it("three nodes on one machine serve one session as one herd", async () => {
  redis = await startRedis();
  const env = { ...leak.env, HERD_REDIS_URL: redis.url, HERD_CLUSTER_SECRET: SECRET };
  nodes.push(
    ...(await Promise.all(
      ["a", "b", "c"].map((n) => startDaemon({ config: join(DIR, `node-${n}.yaml`), env })),
    )),
  );
  const seen: { worker: string; counter: number }[] = [];
  for (const d of nodes) {
    const res = await fetch(`${d.dataUrl}/counter`, { headers: { "X-Session-ID": "ada" } });
    expect(res.status).toBe(200);
    seen.push((await res.json()) as { worker: string; counter: number });
  }
  // One worker: the same process through every node, its counter going up.
  expect(new Set(seen.map((s) => s.worker)).size).toBe(1);
  expect(seen.map((s) => s.counter)).toEqual([1, 2, 3]);
  const status = await eventually("cluster status lists three nodes", () => {
    const r = spawnSync(
      process.execPath,
      [HERD_BIN, "cluster", "status", "--addr", nodes[2]!.controlUrl],
      {
        encoding: "utf8",
      },
    );
    return ["node-a", "node-b", "node-c"].every((n) => r.stdout.includes(n)) ? r.stdout : undefined;
  });
  expect(status).toContain("demo");
});
