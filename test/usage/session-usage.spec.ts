// Usage per session (issue 21) with real workers and the real daemon: CPU and memory from the
// worker's cgroup, bytes from the data plane on both of its paths (the fast path, node:http)
// and through a WebSocket tunnel; live in ListSessions and in all on the session's end.

import { readFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import WebSocket from "ws";
import type { Session } from "../../gen/herd/v1/herd_pb.ts";
import { herdClient } from "../helpers/control-plane-harness.ts";
import { type Daemon, REPO_ROOT, startDaemon } from "../helpers/daemon.ts";
import { eventually } from "../helpers/herd.ts";
import { expectNoLeaks, killAllWithTag, newLeakTag } from "../helpers/processes.ts";

const MiB = 2 ** 20;

/** One raw HTTP/1.1 exchange, the connection closed after it; resolves with the bytes read. */
function exchange(url: string, head: string): Promise<number> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => socket.write(head));
    let bytes = 0;
    socket.on("data", (chunk: Buffer) => {
      bytes += chunk.length;
    });
    socket.on("error", reject);
    socket.on("close", () => resolve(bytes));
  });
}

function download(daemon: Daemon, session: string, path: "fast" | "node-http"): Promise<number> {
  // node:http joins repeated routing headers by rules of its own, so the fast path leaves a
  // request with two Cookie headers to it (fast-connection.ts).
  const cookies = path === "fast" ? "" : "Cookie: a=1\r\nCookie: b=2\r\n";
  const host = new URL(daemon.dataUrl).host;
  return exchange(
    daemon.dataUrl,
    `GET /download?mb=10 HTTP/1.1\r\nHost: ${host}\r\nX-Session-ID: ${session}\r\n${cookies}Connection: close\r\n\r\n`,
  );
}

describe("session usage", () => {
  let daemon: Daemon | undefined;
  let tag = "";
  afterEach(async () => {
    await daemon?.stop();
    daemon = undefined;
    killAllWithTag(tag);
    await expectNoLeaks(tag);
  });

  async function start(
    workers: Record<string, Record<string, unknown>> = { demo: { max: 3 } },
  ): Promise<ReturnType<typeof herdClient>> {
    const leak = newLeakTag();
    tag = leak.tag;
    const pools = Object.fromEntries(
      Object.entries(workers).map(([name, pool]) => [
        name,
        { cmd: ["node", "test/fixtures/worker.mjs"], health_path: "/health", ...pool },
      ]),
    );
    daemon = await startDaemon({ config: { workers: pools }, env: leak.env });
    return herdClient("connect-h1", daemon.controlUrl);
  }

  it("a session that burns ~1 s of CPU and touches 100 MiB reports both at its end", async () => {
    const c = await start();
    await c.acquireSession({ sessionId: "busy" });
    for (const path of ["/control/burn?ms=1000", "/control/eat?mb=100"]) {
      const res = await fetch(`${daemon!.dataUrl}${path}`, {
        method: "POST",
        headers: { "X-Session-ID": "busy" },
      });
      expect(res.status).toBe(200);
      await res.arrayBuffer();
    }
    const live = (await c.listSessions({})).sessions.find((s) => s.sessionId === "busy")!;
    expect(live.usage?.cpuSeconds).toBeGreaterThanOrEqual(0.8);
    const ended = (await c.releaseSession({ sessionId: "busy" })).session!;
    expect(ended.usage?.cpuSeconds).toBeGreaterThanOrEqual(0.8);
    expect(ended.usage?.cpuSeconds).toBeLessThan(30);
    expect(Number(ended.usage?.memoryPeakBytes)).toBeGreaterThanOrEqual(100 * MiB);
    expect(ended.usage?.rxBytes).toBeGreaterThan(0n);
    expect(ended.usage?.txBytes).toBeGreaterThan(0n);
  });

  it("a 10 MiB download is counted on the fast path and on node:http, live and at the end", async () => {
    const c = await start();
    for (const path of ["fast", "node-http"] as const) {
      const id = `dl-${path}`;
      await c.acquireSession({ sessionId: id });
      const got = await download(daemon!, id, path);
      expect(got).toBeGreaterThan(10 * MiB);
      const live = (await c.listSessions({})).sessions.find((s) => s.sessionId === id)!;
      expect(live.usage?.txBytes, path).toBe(BigInt(got));
      const ended: Session = (await c.releaseSession({ sessionId: id })).session!;
      expect(ended.usage?.txBytes, path).toBe(BigInt(got));
      expect(ended.usage?.rxBytes, path).toBeGreaterThan(50n);
      expect(ended.usage?.rxBytes, path).toBeLessThan(1024n);
    }
  });

  it("a WebSocket exchange is counted both ways, live while the tunnel is open", async () => {
    const c = await start();
    await c.acquireSession({ sessionId: "ws" });
    const ws = new WebSocket(`${daemon!.dataUrl.replace("http", "ws")}/ws`, {
      headers: { "X-Session-ID": "ws" },
    });
    const messages: Buffer[] = [];
    ws.on("message", (data: Buffer) => messages.push(data));
    await new Promise((resolve, reject) => {
      ws.once("open", resolve);
      ws.once("error", reject);
    });
    const payload = Buffer.alloc(MiB, 7);
    ws.send(payload);
    while (!messages.some((m) => m.length === MiB)) await new Promise((r) => setTimeout(r, 20));
    const live = (await c.listSessions({})).sessions.find((s) => s.sessionId === "ws")!;
    expect(live.usage?.rxBytes).toBeGreaterThan(BigInt(MiB));
    expect(live.usage?.txBytes).toBeGreaterThan(BigInt(MiB));
    ws.close();
    await new Promise((r) => ws.once("close", r));
    const ended = (await c.releaseSession({ sessionId: "ws" })).session!;
    expect(ended.usage?.rxBytes).toBeGreaterThan(BigInt(MiB));
    expect(ended.usage?.rxBytes).toBeLessThan(BigInt(MiB + 4096));
    expect(ended.usage?.txBytes).toBeGreaterThan(BigInt(MiB));
    expect(ended.usage?.txBytes).toBeLessThan(BigInt(MiB + 4096));
  });

  it("/metrics has the latency histograms by pool and outcome, durations by end reason, usage by pool", async () => {
    const c = await start({ demo: { min: 1, max: 1 }, cold: { min: 0, max: 1 } });
    await c.acquireSession({ sessionId: "warm" });
    const res = await fetch(`${daemon!.dataUrl}/whoami`, { headers: { "X-Session-ID": "warm" } });
    await res.arrayBuffer();
    const queued = c.acquireSession({ sessionId: "queued" });
    await eventually("the acquire queued", async () =>
      (await c.getStats({})).pools.some((p) => p.name === "demo" && p.queued === 1),
    );
    await c.releaseSession({ sessionId: "warm" });
    await queued;
    await c.releaseSession({ sessionId: "queued" });
    await c.acquireSession({ pool: "cold", sessionId: "cold" });
    await c.releaseSession({ sessionId: "cold" });

    const series = new Map<string, number>();
    let text = "";
    await eventually(
      "the end of every session counted",
      async () => {
        text = await (await fetch(`${daemon!.controlUrl}/metrics`)).text();
        series.clear();
        for (const line of text.split("\n")) {
          const m = /^(herd_\w+(?:\{[^}]*\})?) (\S+)$/.exec(line);
          if (m) series.set(m[1]!, Number(m[2]));
        }
        return (
          series.get('herd_session_duration_seconds_count{pool="cold",reason="released"}') === 1
        );
      },
      30_000,
    );
    const at = (name: string) => series.get(name);
    expect(at('herd_pool_acquire_seconds_count{pool="demo",outcome="warm"}')).toBe(1);
    expect(at('herd_pool_acquire_seconds_count{pool="demo",outcome="queued"}')).toBe(1);
    expect(at('herd_pool_acquire_seconds_count{pool="cold",outcome="cold"}')).toBe(1);
    expect(at('herd_pool_acquire_seconds_count{pool="demo",outcome="cold"}')).toBeUndefined();
    expect(at('herd_pool_queue_wait_seconds_count{pool="demo"}')).toBe(1);
    expect(at('herd_pool_queue_wait_seconds_bucket{le="60",pool="demo"}')).toBe(1);
    expect(at('herd_worker_start_seconds_count{pool="cold"}')).toBe(1);
    // demo's one worker (min: 1, reused) started with the daemon, before the control plane's
    // metrics existed: counted all the same.
    expect(at('herd_worker_start_seconds_count{pool="demo"}')).toBe(1);
    expect(at('herd_session_duration_seconds_count{pool="demo",reason="released"}')).toBe(2);
    expect(at('herd_session_tx_bytes_total{pool="demo"}')).toBeGreaterThan(100);
    expect(at('herd_session_rx_bytes_total{pool="demo"}')).toBeGreaterThan(50);
    expect(at('herd_session_cpu_seconds_total{pool="demo"}')).toBeGreaterThan(0);
    expect(at('herd_session_memory_peak_bytes_count{pool="cold"}')).toBe(1);

    // docs/operations.md's "Billing and monitoring" lists exactly the metrics served here.
    const doc = readFileSync(join(REPO_ROOT, "docs/operations.md"), "utf8");
    const section = doc.slice(doc.indexOf("## Billing and monitoring")).split("\n## ")[0]!;
    const listed = [...section.matchAll(/^\| `(herd_\w+)`/gm)].map((m) => m[1]!);
    const served = [
      ...text.matchAll(
        /^# TYPE (herd_(?:pool_acquire|pool_queue_wait|worker_start|session_)\w*) /gm,
      ),
    ];
    expect(listed.sort()).toEqual(served.map((m) => m[1]!).sort());
  });
});
