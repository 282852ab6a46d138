// The cluster's deployment files stay in step with the config schema: every herd.yaml they
// hold (the per-node examples, the compose file's, the one inside the Kubernetes ConfigMap)
// loads through the real `herd config check`. The engines themselves do not run here.

import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createClient as createRedis } from "redis";
import { afterAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { HERD_BIN } from "../helpers/daemon.ts";
import { eventually } from "../helpers/herd.ts";
import { freePort } from "../helpers/ports.ts";

const EXAMPLE = fileURLToPath(new URL("../../examples/cluster/", import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), "herd-deploy-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const ENV = {
  ...process.env,
  HERD_TOKEN: "a-control-token",
  HERD_REDIS_URL: "redis://127.0.0.1:6379/0",
  HERD_CLUSTER_SECRET: "a-cluster-secret-of-some-length",
};

/** What the entrypoints substitute before herd reads the file. */
const entrypoint = (text: string) =>
  text.replaceAll("__NODE__", "herd-0").replaceAll("__IP__", "10.0.0.5");

function check(file: string): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [HERD_BIN, "config", "check", file], {
    env: ENV,
    encoding: "utf8",
  });
  return { status: r.status, out: r.stdout + r.stderr };
}

function materialise(name: string, text: string): string {
  const file = join(tmp, name);
  writeFileSync(file, entrypoint(text));
  return file;
}

describe("examples/cluster deployment files", () => {
  const nodes = readdirSync(EXAMPLE).filter((f) => /^node-.*\.yaml$/.test(f));

  it.each(nodes)("%s loads", (f) => {
    const r = check(join(EXAMPLE, f));
    expect(r.status, r.out).toBe(0);
    expect(r.out).toMatch(/cluster node node-/);
  });

  it("compose's herd.yaml loads", () => {
    const r = check(
      materialise("compose.yaml", readFileSync(join(EXAMPLE, "compose/herd.yaml"), "utf8")),
    );
    expect(r.status, r.out).toBe(0);
    expect(r.out).toContain("advertise data 10.0.0.5:8080 control 10.0.0.5:7070");
    // The compose file runs exactly that file.
    expect(readFileSync(join(EXAMPLE, "compose/compose.yaml"), "utf8")).toContain(
      "/app/examples/cluster/compose/herd.yaml",
    );
  });

  it("the Kubernetes ConfigMap's herd.yaml loads", () => {
    const docs = parseAllDocuments(readFileSync(join(EXAMPLE, "k8s/herd.yaml"), "utf8")).map(
      (d) => d.toJS() as { kind: string; data?: Record<string, string> },
    );
    const configs = docs.filter((d) => d.kind === "ConfigMap" && d.data?.["herd.yaml"]);
    expect(configs).toHaveLength(1);
    const r = check(materialise("k8s.yaml", configs[0]!.data!["herd.yaml"]!));
    expect(r.status, r.out).toBe(0);
    expect(r.out).toContain("cluster node herd-0");
  });
});

interface K8sContainer {
  name: string;
  command: string[];
  env: { name: string; value?: string }[];
}
interface K8sObject {
  kind: string;
  metadata: { name: string };
  spec: { template: { spec: { containers: K8sContainer[] } } };
}

describe("examples/cluster deployment files: Redis with an ACL user and password", () => {
  const compose = parseAllDocuments(
    readFileSync(join(EXAMPLE, "compose/compose.yaml"), "utf8"),
  )[0]!.toJS() as {
    "x-herd": { environment: Record<string, string> };
    services: { redis: { command: string[] } };
  };
  const k8s = parseAllDocuments(readFileSync(join(EXAMPLE, "k8s/herd.yaml"), "utf8")).map(
    (d) => d.toJS() as K8sObject,
  );
  const container = (kind: string, name: string): K8sContainer =>
    k8s
      .find((d) => d.kind === kind && d.metadata.name === name)!
      .spec.template.spec.containers.find((c) => c.name === name.replace("herd-", ""))!;

  /** Runs a manifest's Redis start-up script on a free loopback port; returns its URL base. */
  async function runScript(script: string, password: string) {
    const port = await freePort();
    const acl = join(tmp, `users-${port}.acl`);
    const line = script
      .replaceAll("/tmp/users.acl", acl)
      .replace("exec redis-server", `exec redis-server --port ${port} --bind 127.0.0.1`);
    const child = spawn("sh", ["-c", line], {
      env: { PATH: process.env.PATH!, HERD_REDIS_PASSWORD: password },
      stdio: "ignore",
    });
    const exited = new Promise<void>((r) => child.once("exit", () => r()));
    return {
      port,
      stop: async () => {
        child.kill("SIGKILL");
        await exited;
      },
    };
  }

  async function login(url: string): Promise<string> {
    const c = createRedis({ url, socket: { reconnectStrategy: false } });
    c.on("error", () => {});
    try {
      await c.connect();
      return String(await c.set("herd:probe", "1"));
    } catch (err) {
      return (err as Error).message;
    } finally {
      if (c.isOpen) c.destroy();
    }
  }

  it.each([
    ["compose", () => compose.services.redis.command.at(-1)!.replaceAll("$$", "$")],
    ["Kubernetes", () => container("Deployment", "herd-redis").command.at(-1)!],
  ])(
    "%s: Redis runs with the default user off and herd's ACL user; herd's URL logs in as it",
    async (_name, script) => {
      const password = "a-redis-password-0123";
      const redis = await runScript(script(), password);
      try {
        const base = `127.0.0.1:${redis.port}`;
        await eventually("the manifest's redis-server", async () =>
          (await login(`redis://herd:${password}@${base}/0`)) === "OK" ? true : undefined,
        );
        expect(await login(`redis://${base}/0`)).toMatch(/NOAUTH/);
        expect(await login(`redis://herd:wrong@${base}/0`)).toMatch(/WRONGPASS/);
      } finally {
        await redis.stop();
      }
    },
  );

  it("herd's nodes are given a URL with that user and password", () => {
    expect(compose["x-herd"].environment.HERD_REDIS_URL).toMatch(
      /^redis:\/\/herd:\$\{HERD_REDIS_PASSWORD:\?[^}]*\}@redis:6379\/0$/,
    );
    const { env } = container("StatefulSet", "herd");
    const names = env.map((e) => e.name);
    expect(names.indexOf("HERD_REDIS_PASSWORD")).toBeLessThan(names.indexOf("HERD_REDIS_URL"));
    expect(env.find((e) => e.name === "HERD_REDIS_URL")?.value).toBe(
      "redis://herd:$(HERD_REDIS_PASSWORD)@herd-redis:6379/0",
    );
  });
});
