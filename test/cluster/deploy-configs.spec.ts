// The cluster's deployment files stay in step with the config schema: every herd.yaml they
// hold (the per-node examples, the compose file's, the one inside the Kubernetes ConfigMap)
// loads through the real `herd config check`. The engines themselves do not run here.

import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { HERD_BIN } from "../helpers/daemon.ts";

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
