// Control-plane benchmarks (issue 3), each against a baseline measured in the same run:
//   warm AcquireSession  an already-live id (idempotent, no spawn) over one connection, per
//                        protocol: p50/p99 latency and sequential calls/s, vs a bare Node
//                        HTTP round trip of the same HTTP version (the transport's floor);
//   acquire+release      sequential new-session cycles/s on a reusing pool over Connect
//                        HTTP/1.1, vs the same cycles called in process (the RPC's cost).
//
// Standalone: `node --import tsx bench/control-plane.ts [--calls N]`.

import { Agent, createServer as createHttp1Server, request as http1Request } from "node:http";
import { createServer as createHttp2Server, connect as http2Connect } from "node:http2";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { Herd, resolvePoolOptions } from "../src/pool/index.ts";
import { startControlPlane } from "../src/server/index.ts";
import { herdClient, type Protocol } from "../src/server/spec-harness.ts";
import { type BenchRow, compared, median, percentile, round } from "./report.ts";

const WORKER = fileURLToPath(new URL("../test/fixtures/worker.mjs", import.meta.url));

async function timed(n: number, call: () => Promise<unknown>): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await call();
    samples.push(performance.now() - t);
  }
  return samples;
}

/** p50 of a bare POST round trip on one kept-alive HTTP/1.1 connection, or one HTTP/2 session. */
async function bareRoundTrip(version: "1.1" | "2", n: number): Promise<number> {
  const body = Buffer.from('{"sessionId":"warm"}');
  const handler = (req: NodeJS.EventEmitter, res: { end(b: Buffer): void }) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => res.end(Buffer.concat(chunks)));
  };
  if (version === "1.1") {
    const server = createHttp1Server((req, res) => handler(req, res));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const { port } = server.address() as AddressInfo;
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const once = () =>
      new Promise<void>((resolve, reject) => {
        const req = http1Request(
          {
            port,
            method: "POST",
            agent,
            path: "/",
            headers: { "content-type": "application/json" },
          },
          (res) => {
            res.resume();
            res.on("end", resolve);
          },
        );
        req.on("error", reject);
        req.end(body);
      });
    await timed(200, once);
    const samples = await timed(n, once);
    agent.destroy();
    server.close();
    return median(samples);
  }
  const server = createHttp2Server((req, res) => handler(req, res));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  const session = http2Connect(`http://127.0.0.1:${port}`);
  const once = () =>
    new Promise<void>((resolve, reject) => {
      const s = session.request({
        ":method": "POST",
        ":path": "/",
        "content-type": "application/json",
      });
      s.on("error", reject);
      s.resume();
      s.on("end", resolve);
      s.end(body);
    });
  await timed(200, once);
  const samples = await timed(n, once);
  session.close();
  server.close();
  return median(samples);
}

export async function benchControlPlane(opts: { calls?: number } = {}): Promise<BenchRow[]> {
  const calls = opts.calls ?? 3000;
  const herd = await Herd.start([
    resolvePoolOptions({
      name: "bench",
      command: [process.execPath, WORKER],
      healthPath: "/health",
      min: 1,
      max: 2,
    }),
  ]);
  const cp = await startControlPlane(herd, {
    listen: "127.0.0.1:0",
    dataPlaneUrl: "http://127.0.0.1:9",
  });
  const rows: BenchRow[] = [];
  try {
    const floors = {
      "1.1": await bareRoundTrip("1.1", calls),
      "2": await bareRoundTrip("2", calls),
    };
    const protocols: [Protocol, "1.1" | "2"][] = [
      ["connect-h1", "1.1"],
      ["connect-h2", "2"],
      ["grpc", "2"],
    ];
    for (const [protocol, version] of protocols) {
      const client = herdClient(protocol, cp.url);
      await client.acquireSession({ pool: "bench", sessionId: "warm" });
      await timed(300, () => client.acquireSession({ sessionId: "warm" }));
      const started = performance.now();
      const samples = await timed(calls, () => client.acquireSession({ sessionId: "warm" }));
      const seconds = (performance.now() - started) / 1000;
      rows.push(
        compared(
          `warm AcquireSession p50, ${protocol}`,
          median(samples),
          "ms",
          floors[version],
          "≤ 0.7 ms",
        ),
        compared(
          `warm AcquireSession p99, ${protocol}`,
          percentile(samples, 99),
          "ms",
          floors[version],
        ),
        {
          name: `warm AcquireSession calls/s, ${protocol}`,
          value: round(calls / seconds, 0),
          unit: "calls/s",
        },
      );
    }
    await herd.release("warm");

    const cycles = Math.max(100, Math.floor(calls / 10));
    const client = herdClient("connect-h1", cp.url);
    let i = 0;
    await timed(50, async () => {
      const s = await client.acquireSession({ sessionId: `warmup-${i++}` });
      await client.releaseSession({ sessionId: s.session!.sessionId });
    });
    let t = performance.now();
    await timed(cycles, async () => {
      const s = await client.acquireSession({ sessionId: `cycle-${i++}` });
      await client.releaseSession({ sessionId: s.session!.sessionId });
    });
    const overRpc = cycles / ((performance.now() - t) / 1000);
    t = performance.now();
    await timed(cycles, async () => {
      const s = await herd.acquire("bench", `direct-${i++}`);
      await herd.release(s.id);
    });
    const inProcess = cycles / ((performance.now() - t) / 1000);
    rows.push(
      compared(
        "acquire+release cycles/s, connect-h1 (vs in process)",
        overRpc,
        "cycles/s",
        inProcess,
      ),
    );
  } finally {
    await cp.close();
    await herd.close();
  }
  return rows;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const i = process.argv.indexOf("--calls");
  const { formatTable } = await import("./report.ts");
  console.log(
    formatTable(await benchControlPlane(i > 0 ? { calls: Number(process.argv[i + 1]) } : {})),
  );
}
