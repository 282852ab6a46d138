// Without a `cluster` section nothing Redis-related loads: the daemon never resolves
// src/cluster or the Redis client. With one, both load (which proves the trace sees them).

import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { startDaemon } from "../helpers/daemon.ts";
import { expectNoLeaks, newLeakTag } from "../helpers/processes.ts";
import { type RedisServer, SECRET, startRedis, workerPool } from "./cluster-harness.ts";

const TRACER = fileURLToPath(new URL("./trace-loads.mjs", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "herd-loads-"));
let redis: RedisServer | undefined;

afterEach(async () => {
  await redis?.stop();
  redis = undefined;
});

async function loadedBy(config: Record<string, unknown>, name: string): Promise<string[]> {
  const trace = join(dir, name);
  const leak = newLeakTag();
  const daemon = await startDaemon({
    config,
    env: {
      ...leak.env,
      HERD_CLUSTER_SECRET: SECRET,
      HERD_TRACE_LOADS: trace,
      NODE_OPTIONS: `--import=${TRACER}`,
    },
  });
  const exit = await daemon.stop();
  await expectNoLeaks(leak.tag);
  expect(exit).toEqual({ code: 0, signal: null });
  return readFileSync(trace, "utf8").split("\n");
}

// bin/herd runs the compiled bundle: src/cluster is the lazily loaded start-cluster chunk there.
const redisRelated = (urls: string[]) =>
  urls.filter(
    (u) =>
      u.includes("/src/cluster/") ||
      /\/dist\/start-cluster-/.test(u) ||
      /node_modules\/(@redis|redis)\//.test(u),
  );
const loadsServe = (u: string) => u.includes("/src/cli/serve.ts") || /\/dist\/serve-/.test(u);

describe("cluster mode loads only with a cluster section", () => {
  it("a single node never loads src/cluster nor the Redis client", async () => {
    const urls = await loadedBy({ workers: { w: workerPool() } }, "single.txt");
    expect(urls.some(loadsServe)).toBe(true);
    expect(redisRelated(urls)).toEqual([]);
  });

  it("a cluster node does (the trace can see them)", async () => {
    redis = await startRedis();
    const urls = await loadedBy(
      {
        workers: { w: workerPool() },
        cluster: { redis: redis.url, node: "n1", secret_env: "HERD_CLUSTER_SECRET" },
      },
      "cluster.txt",
    );
    expect(redisRelated(urls).length).toBeGreaterThan(0);
  });
});

process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
