// A throwaway cluster for tests: one real redis-server on a free port (no persistence), run as
// every example runs it — the default user off, one ACL user with a password, limited to herd's
// keys — and N real `herd serve` daemons joined to it, all carrying one leak tag. `cleanup` stops every
// daemon (SIGTERM, clean exit expected unless the test killed it), stops Redis, and proves
// that no tagged process and no redis-server of ours is left.

import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { type Client, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { HerdService } from "../../gen/herd/v1/herd_pb.ts";
import { type Daemon, startDaemon } from "../helpers/daemon.ts";
import { eventually } from "../helpers/herd.ts";
import { freePort } from "../helpers/ports.ts";
import {
  cmdline,
  descendants,
  expectNoLeaks,
  killAllWithTag,
  type LeakTag,
  newLeakTag,
  pidAlive,
} from "../helpers/processes.ts";
import { WORKER_FIXTURE } from "../helpers/worker.ts";

export const SECRET = "test-cluster-secret-0123456789";

/** The JSON of a record a node signed (src/cluster/signed-record.ts), for tests that read it. */
export function unsigned(record: string): string {
  return record.replace(/^h1\.[A-Za-z0-9_-]{43}\./, "");
}

/** The ACL user herd's nodes log in as (its password is random per server). */
export const REDIS_USER = "herd";

export interface RedisServer {
  port: number;
  /** With the user and password: redis://herd:PASSWORD@127.0.0.1:PORT/0. */
  url: string;
  password: string;
  pid: number;
  stop(): Promise<void>;
}

export async function startRedis(port?: number, password?: string): Promise<RedisServer> {
  const p = port ?? (await freePort());
  const pass = password ?? randomBytes(12).toString("hex");
  // The password on the command line is visible to this host's users: fine for a throwaway
  // test server; the examples put it in a config file.
  const child: ChildProcess = spawn(
    "redis-server",
    [
      ...["--save", "", "--appendonly", "no", "--port", String(p), "--bind", "127.0.0.1"],
      ...["--user", "default", "off"],
      ...["--user", REDIS_USER, "on", `>${pass}`, "~herd:*", "&*", "+@all", "-@dangerous"],
    ],
    { stdio: "ignore" },
  );
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  const url = `redis://${REDIS_USER}:${pass}@127.0.0.1:${p}/0`;
  await eventually(`redis-server on ${p}`, async () => {
    const c = (await import("redis")).createClient({ url, socket: { reconnectStrategy: false } });
    c.on("error", () => {});
    try {
      await c.connect();
      return (await c.ping()) === "PONG";
    } catch {
      return false;
    } finally {
      if (c.isOpen) c.destroy();
    }
  });
  return {
    port: p,
    url,
    password: pass,
    pid: child.pid!,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exited;
      if (pidAlive(child.pid!)) throw new Error(`redis-server ${child.pid} still alive`);
    },
  };
}

export interface NodeOptions {
  node: string;
  /** Default 4s: long enough that a loaded machine never fences a node by accident. */
  lease?: string;
  pools?: Record<string, Record<string, unknown>>;
  /** cluster.advertise, when other nodes must reach this one elsewhere than where it listens. */
  advertise?: { data?: string; control?: string };
  /** The control section (e.g. a token). */
  control?: Record<string, unknown>;
  /** cluster.redis instead of the harness's Redis URL. */
  redisUrl?: string;
  /** More environment for the daemon (e.g. NODE_EXTRA_CA_CERTS). */
  env?: Record<string, string>;
  /** More top-level config keys (e.g. drain_timeout). */
  config?: Record<string, unknown>;
  /** The `herd` command (default: this checkout's), e.g. another tree's for an A/B bench. */
  command?: readonly string[];
  /** cluster.hop (default: the daemon's, relay). */
  hop?: "relay" | "forward";
}

export function workerPool(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    cmd: [process.execPath, WORKER_FIXTURE],
    min: 0,
    max: 4,
    health_path: "/health",
    // The cluster specs compare the pid a worker reports with the session's worker_pid (the
    // host's): a PID namespace would renumber the first. They are about routing, not containment.
    isolation: "none",
    ...overrides,
  };
}

export interface TestCluster {
  redis: RedisServer;
  nodes: Daemon[];
  leak: LeakTag;
  client(d: Daemon): Client<typeof HerdService>;
  /** Starts one more node on the same Redis. */
  addNode(spec: NodeOptions): Promise<Daemon>;
  /** Kill Redis (all its data is lost); `up()` starts an empty one on the same port. */
  redisDown(): Promise<{ up(): Promise<void> }>;
  /** Pids of the fixture workers under `d` (its process tree). */
  workers(d: Daemon): number[];
  cleanup(): Promise<void>;
}

export async function startCluster(specs: NodeOptions[]): Promise<TestCluster> {
  const leak = newLeakTag();
  const redis = await startRedis();
  const nodes: Daemon[] = [];
  const clients = new Map<Daemon, Client<typeof HerdService>>();
  const cluster: TestCluster = {
    redis,
    nodes,
    leak,
    client(d) {
      let c = clients.get(d);
      if (!c) {
        c = createClient(
          HerdService,
          createConnectTransport({ baseUrl: d.controlUrl, httpVersion: "1.1" }),
        );
        clients.set(d, c);
      }
      return c;
    },
    addNode: () => Promise.reject(new Error("not started")),
    async redisDown() {
      await cluster.redis.stop();
      return {
        up: async () => {
          cluster.redis = await startRedis(cluster.redis.port, cluster.redis.password);
        },
      };
    },
    workers(d) {
      return descendants(d.pid).filter((p) => cmdline(p).includes("worker.mjs"));
    },
    async cleanup() {
      const exits = await Promise.all(nodes.map((d) => d.stop()));
      await cluster.redis.stop();
      try {
        await expectNoLeaks(leak.tag);
      } finally {
        killAllWithTag(leak.tag);
      }
      return void exits;
    },
  };
  const start = (s: NodeOptions) =>
    startDaemon({
      config: {
        ...s.config,
        log: { level: "warn" },
        ...(s.control && { control: s.control }),
        cluster: {
          redis: s.redisUrl ?? cluster.redis.url,
          node: s.node,
          ...(s.advertise && { advertise: s.advertise }),
          lease: s.lease ?? "4s",
          secret_env: "HERD_CLUSTER_SECRET",
          ...(s.hop && { hop: s.hop }),
        },
        workers: s.pools ?? { w: workerPool() },
      },
      env: { ...leak.env, ...s.env, HERD_CLUSTER_SECRET: SECRET },
      ...(s.command && { command: s.command }),
    });
  cluster.addNode = async (s) => {
    const d = await start(s);
    nodes.push(d);
    return d;
  };
  try {
    nodes.push(...(await Promise.all(specs.map(start))));
  } catch (err) {
    await cluster.cleanup().catch(() => {});
    throw err;
  }
  return cluster;
}
