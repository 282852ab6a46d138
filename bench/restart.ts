// Restart benchmark (issue 22): `herd restart` against a plain stop-and-start of the same
// daemon (bin/herd, the demo-like pool of the test worker, uncontained), in one run.
//   - restart → new sessions served: from the RestartNode call until a request for a new
//     session id is answered, against the same after SIGINT (stop now) and a fresh `herd serve`
//     on the same ports.
//   - the longest pause a WebSocket echo sees across a restart (a message every 10 ms through
//     the data plane; the pause is the longest round trip while the restart runs), against the
//     longest one over as long a quiet stretch before it. Goal: ≤ 100 ms at p99 over the runs.
//     A stop-and-start has no such figure: its tunnels, and their sessions, are gone.
//
// `--contained`: the same with a contained pool (its own uid per worker, private network through
// the relay, private filesystem), which a restart hands over too; `--egress`: contained with
// `network: egress` (each handed worker's veth moves into the new daemon's nftables table).
//
// Standalone: `npx tsx bench/restart.ts [--runs N] [--contained | --egress]`.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import WebSocket from "ws";
import { HERD_BIN } from "../test/helpers/daemon.ts";
import { freePort } from "../test/helpers/ports.ts";
import { pidAlive } from "../test/helpers/processes.ts";
import { WORKER_FIXTURE } from "../test/helpers/worker.ts";
import { type BenchRow, compared, formatTable, median, percentile } from "./report.ts";

function serve(config: string): ChildProcess {
  const child = spawn(process.execPath, [HERD_BIN, "serve", "--config", config], {
    stdio: "ignore",
    detached: true,
  });
  child.unref();
  return child;
}

/** Resolves once a request for a new session id is answered; the time it took, in ms. */
async function newSessionServed(dataUrl: string, since: number, id: string): Promise<number> {
  for (;;) {
    try {
      const res = await fetch(`${dataUrl}/whoami`, {
        headers: { "x-session-id": id, connection: "close" },
        signal: AbortSignal.timeout(5_000),
      });
      if (res.ok) {
        await res.arrayBuffer();
        return performance.now() - since;
      }
    } catch {}
    await sleep(2);
  }
}

async function restartNode(controlUrl: string): Promise<number> {
  const res = await fetch(`${controlUrl}/herd.v1.HerdService/RestartNode`, {
    method: "POST",
    headers: { "content-type": "application/json", connection: "close" },
    body: "{}",
  });
  const body = (await res.json()) as { pid?: number; message?: string };
  if (!res.ok || !body.pid) throw new Error(`restart failed: ${body.message}`);
  return body.pid;
}

/** Echo round trips of a message every 10 ms; `window` returns the longest since it began. */
async function echo(dataUrl: string, id: string) {
  const ws = new WebSocket(`${dataUrl.replace("http", "ws")}/ws`, {
    headers: { "x-session-id": id },
  });
  await new Promise((ok, fail) => ws.once("message", ok).once("error", fail));
  const sent = new Map<string, number>();
  let longest = 0;
  ws.on("message", (data) => {
    const at = sent.get(data.toString());
    if (at === undefined) return;
    sent.delete(data.toString());
    longest = Math.max(longest, performance.now() - at);
  });
  let seq = 0;
  const timer = setInterval(() => {
    const text = `m${++seq}`;
    sent.set(text, performance.now());
    ws.send(text);
  }, 10);
  return {
    window: () => {
      // A message still unanswered has paused since it was sent.
      const now = performance.now();
      for (const at of sent.values()) longest = Math.max(longest, now - at);
      const value = longest;
      longest = 0;
      return value;
    },
    close: () => {
      clearInterval(timer);
      ws.close();
    },
  };
}

export async function benchRestart(
  opts: { runs?: number; contained?: boolean; egress?: boolean } = {},
): Promise<BenchRow[]> {
  const runs = opts.runs ?? 5;
  const first = 3_900_000 + Math.floor(Math.random() * 900) * 100;
  const isolation =
    opts.contained || opts.egress
      ? {
          user: "auto",
          uid_range: `${first}-${first + 99}`,
          network: opts.egress ? "egress" : "private",
          filesystem: "private",
        }
      : "none";
  const what = opts.egress ? " (egress pool)" : opts.contained ? " (contained pool)" : "";
  const dir = mkdtempSync(join(tmpdir(), "herd-bench-restart-"));
  const [controlPort, dataPort] = [await freePort(), await freePort()];
  const config = join(dir, "herd.yaml");
  writeFileSync(
    config,
    JSON.stringify({
      control: { listen: `127.0.0.1:${controlPort}` },
      data: { listen: `127.0.0.1:${dataPort}` },
      drain_timeout: "30s",
      workers: {
        w: {
          cmd: [process.execPath, WORKER_FIXTURE, "--port", "{{.Port}}"],
          min: 1,
          max: 64,
          health_path: "/health",
          isolation,
        },
      },
    }),
  );
  const controlUrl = `http://127.0.0.1:${controlPort}`;
  const dataUrl = `http://127.0.0.1:${dataPort}`;
  let daemon = serve(config).pid!;
  const restarted: number[] = [];
  const stopStarted: number[] = [];
  const pauses: number[] = [];
  const quiet: number[] = [];
  try {
    await newSessionServed(dataUrl, performance.now(), "warm-up");
    for (let i = 0; i < runs; i++) {
      const ws = await echo(dataUrl, `ws-${i}`);
      await sleep(1_000);
      quiet.push(ws.window());
      const began = performance.now();
      const next = await restartNode(controlUrl);
      restarted.push(await newSessionServed(dataUrl, began, `after-restart-${i}`));
      const tookMs = performance.now() - began;
      await sleep(Math.max(0, 1_000 - tookMs));
      pauses.push(ws.window());
      ws.close();
      // The old process leaves once the tunnel is closed.
      while (pidAlive(daemon)) await sleep(10);
      daemon = next;

      const stopped = performance.now();
      process.kill(daemon, "SIGINT");
      while (pidAlive(daemon)) await sleep(2);
      daemon = serve(config).pid!;
      stopStarted.push(await newSessionServed(dataUrl, stopped, `after-stop-${i}`));
    }
  } finally {
    process.kill(daemon, "SIGINT");
    while (pidAlive(daemon)) await sleep(10);
    rmSync(dir, { recursive: true, force: true });
  }
  return [
    compared(
      `herd restart → new session served (vs stop-and-start)${what}, p50`,
      median(restarted),
      "ms",
      median(stopStarted),
    ),
    compared(
      `longest WebSocket echo pause across herd restart (vs a quiet second)${what}, p99`,
      percentile(pauses, 99),
      "ms",
      percentile(quiet, 99),
      "≤ 100 ms",
    ),
  ];
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const i = process.argv.indexOf("--runs");
  const runs = i > 0 ? Number(process.argv[i + 1]) : undefined;
  const contained = process.argv.includes("--contained");
  const egress = process.argv.includes("--egress");
  console.log(formatTable(await benchRestart({ ...(runs ? { runs } : {}), contained, egress })));
}
