// Tracing (issue 21) with the real daemon, real workers and a real OTLP/HTTP receiver started by
// the test (test/helpers/otlp-receiver.ts, decoding the protobuf payload the SDK sends): an
// AcquireSession over Connect and over gRPC, and data-plane requests on both paths (the fast
// path and node:http), arrive with the caller's trace id; the worker is sent herd's span as its
// `traceparent`. With tracing off (OTEL_SDK_DISABLED) nothing is sent and the client's
// traceparent reaches the worker as it was.

import { randomBytes } from "node:crypto";
import { connect } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { herdClient } from "../helpers/control-plane-harness.ts";
import { type Daemon, startDaemon } from "../helpers/daemon.ts";
import { eventually } from "../helpers/herd.ts";
import {
  type OtlpReceiver,
  type ReceivedSpan,
  startOtlpReceiver,
} from "../helpers/otlp-receiver.ts";
import { freePort } from "../helpers/ports.ts";
import { expectNoLeaks, killAllWithTag, newLeakTag } from "../helpers/processes.ts";

/**
 * Loaded into the daemon (NODE_OPTIONS; workers get a clean environment): at exit it prints how
 * many modules of the OpenTelemetry SDK the process loaded (CommonJS: Node's module cache). The
 * API package does not count: prom-client loads it in every daemon, traced or not.
 */
const PROBE = `data:text/javascript,${encodeURIComponent(
  'import { createRequire } from "node:module"; const cache = createRequire("/").cache; process.on("exit", () => process.stderr.write("\\nOTEL_MODULES " + Object.keys(cache).filter((p) => p.includes("@opentelemetry/") && !p.includes("@opentelemetry/api/")).length + "\\n"));',
)}`;

function otelModules(daemon: Daemon): number {
  const m = /OTEL_MODULES (\d+)/.exec(daemon.stderr());
  if (!m) throw new Error(`the probe printed nothing: ${daemon.stderr().slice(-500)}`);
  return Number(m[1]);
}

/** A caller's trace context: a fresh trace id and parent span id. */
function callerContext() {
  const traceId = randomBytes(16).toString("hex");
  const spanId = randomBytes(8).toString("hex");
  return { traceId, spanId, traceparent: `00-${traceId}-${spanId}-01` };
}

/** One raw HTTP/1.1 exchange on its own connection; resolves with the response's JSON body. */
function exchange(url: string, head: string): Promise<Record<string, unknown>> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => socket.write(head));
    const chunks: Buffer[] = [];
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.on("error", reject);
    socket.on("close", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      const body = text.slice(text.indexOf("\r\n\r\n") + 4);
      try {
        resolve(JSON.parse(body) as Record<string, unknown>);
      } catch {
        reject(new Error(`not a JSON answer: ${text.slice(0, 300)}`));
      }
    });
  });
}

/** GET /echo for `session` on the fast path or node:http's, with `traceparent` if given. */
function echo(
  daemon: Daemon,
  session: string,
  via: "fast" | "node-http",
  traceparent?: string,
): Promise<{ headers: Record<string, string> }> {
  const host = new URL(daemon.dataUrl).host;
  // The fast path leaves a request with two Cookie headers to node:http (fast-connection.ts).
  const cookies = via === "fast" ? "" : "Cookie: a=1\r\nCookie: b=2\r\n";
  const trace = traceparent ? `traceparent: ${traceparent}\r\ntracestate: herd=test\r\n` : "";
  return exchange(
    daemon.dataUrl,
    `GET /echo?herd_session=${session} HTTP/1.1\r\nHost: ${host}\r\n${cookies}${trace}Connection: close\r\n\r\n`,
  ) as Promise<{ headers: Record<string, string> }>;
}

describe("tracing", () => {
  let daemon: Daemon | undefined;
  let receiver: OtlpReceiver | undefined;
  let tag = "";
  afterEach(async () => {
    await daemon?.stop();
    daemon = undefined;
    await receiver?.close();
    receiver = undefined;
    killAllWithTag(tag);
    await expectNoLeaks(tag);
  });

  async function start(env: Record<string, string>): Promise<Daemon> {
    const leak = newLeakTag();
    tag = leak.tag;
    daemon = await startDaemon({
      config: {
        workers: {
          demo: {
            cmd: ["node", "test/fixtures/worker.mjs"],
            health_path: "/health",
            min: 0,
            max: 3,
          },
        },
      },
      env: { ...leak.env, NODE_OPTIONS: `--import=${PROBE}`, ...env },
    });
    return daemon;
  }

  async function traced(): Promise<{ daemon: Daemon; receiver: OtlpReceiver }> {
    receiver = await startOtlpReceiver();
    const d = await start({
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_SERVICE_NAME: "herd-under-test",
      // Export within a tenth of a second rather than the default five.
      OTEL_BSP_SCHEDULE_DELAY: "100",
    });
    return { daemon: d, receiver };
  }

  async function spanOf(
    r: OtlpReceiver,
    what: string,
    match: (s: ReceivedSpan) => boolean,
  ): Promise<ReceivedSpan> {
    let found: ReceivedSpan | undefined;
    await eventually(
      what,
      async () => {
        found = r.spans.find(match);
        return found !== undefined;
      },
      30_000,
    );
    return found!;
  }

  it("a traced AcquireSession (Connect and gRPC) arrives with the caller's trace id and the acquire's phases", async () => {
    const { daemon: d, receiver: r } = await traced();
    for (const protocol of ["connect-h1", "grpc"] as const) {
      const caller = callerContext();
      const c = herdClient(protocol, d.controlUrl);
      const sessionId = `acq-${protocol}`;
      // min: 0 — the first acquire starts its worker: a cold acquire, every phase in it.
      await c.acquireSession({ sessionId }, { headers: { traceparent: caller.traceparent } });
      const call = await spanOf(
        r,
        `the ${protocol} AcquireSession span`,
        (s) => s.name === "herd.v1.HerdService/AcquireSession" && s.traceId === caller.traceId,
      );
      expect(call.parentSpanId).toBe(caller.spanId);
      expect(call.kind).toBe(2);
      expect(call.attributes["herd.session.id"]).toBe(sessionId);
      expect(call.attributes["herd.pool"]).toBe("demo");
      expect(call.resource["service.name"]).toBe("herd-under-test");
      const outcome = call.attributes["herd.acquire.outcome"];
      expect(["cold", "warm"]).toContain(outcome);
      const children = await (async () => {
        const names = outcome === "cold" ? ["queue wait", "worker start", "readiness"] : [];
        const got: ReceivedSpan[] = [];
        for (const name of names) {
          got.push(
            await spanOf(
              r,
              `${name} of ${protocol}`,
              (s) => s.name === name && s.traceId === caller.traceId,
            ),
          );
        }
        return got;
      })();
      for (const child of children) {
        expect(child.parentSpanId).toBe(call.spanId);
        expect(child.startNs).toBeGreaterThanOrEqual(call.startNs);
        expect(child.endNs).toBeLessThanOrEqual(call.endNs);
        expect(child.endNs).toBeGreaterThanOrEqual(child.startNs);
      }
      await c.releaseSession({ sessionId, kill: true });
    }
    // The first acquire of a pool at min 0 is cold: its phases are there.
    expect(r.spans.filter((s) => s.name === "readiness").length).toBeGreaterThanOrEqual(1);
    // A failed acquire is a span with an error status, joined all the same.
    const caller = callerContext();
    const c = herdClient("connect-h1", d.controlUrl);
    await expect(
      c.acquireSession({ pool: "nope" }, { headers: { traceparent: caller.traceparent } }),
    ).rejects.toThrow();
    const failed = await spanOf(
      r,
      "the failed acquire's span",
      (s) => s.traceId === caller.traceId,
    );
    expect(failed.status.code).toBe(2);
    expect(failed.attributes["herd.error.code"]).toBe("not_found");
    expect(r.rejected).toEqual([]);
  });

  it("a traced data-plane request, on either path, arrives with the caller's trace id and the worker gets herd's span as its parent", async () => {
    const { daemon: d, receiver: r } = await traced();
    await herdClient("connect-h1", d.controlUrl).acquireSession({ sessionId: "dp" });
    for (const via of ["fast", "node-http"] as const) {
      const caller = callerContext();
      const seen = await echo(d, "dp", via, caller.traceparent);
      const request = await spanOf(
        r,
        `the ${via} request's span`,
        (s) => s.name === "GET" && s.traceId === caller.traceId,
      );
      expect(request.parentSpanId).toBe(caller.spanId);
      expect(request.kind).toBe(2);
      expect(request.attributes["herd.dataplane.path"]).toBe(via);
      expect(request.attributes["herd.session.id"]).toBe("dp");
      expect(request.attributes["http.request.method"]).toBe("GET");
      expect(request.attributes["url.path"]).toBe("/echo");
      expect(request.attributes["http.response.status_code"]).toBe(200n);
      // The worker's parent is herd's span, in the caller's trace; its tracestate passes as sent.
      expect(seen.headers.traceparent).toBe(`00-${caller.traceId}-${request.spanId}-01`);
      expect(seen.headers.tracestate).toBe("herd=test");
    }
    // A request without a trace context starts a trace, and its worker still gets a traceparent.
    const seen = await echo(d, "dp", "fast");
    const [, traceId, spanId] = /^00-([0-9a-f]{32})-([0-9a-f]{16})-0[01]$/.exec(
      seen.headers.traceparent ?? "",
    )!;
    const root = await spanOf(r, "the untraced request's span", (s) => s.spanId === spanId);
    expect(root.traceId).toBe(traceId);
    expect(root.parentSpanId).toBe("");
    expect(r.rejected).toEqual([]);
    await d.stop();
    expect(otelModules(d)).toBeGreaterThan(0);
  });

  it("a collector that is away costs spans, never a request or a clean stop", async () => {
    // A port nobody listens on: every export is refused. The spans wait in the batch until the
    // daemon stops, whose flush then fails.
    const d = await start({
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${await freePort()}`,
      OTEL_BSP_SCHEDULE_DELAY: "600000",
    });
    await herdClient("connect-h1", d.controlUrl).acquireSession({ sessionId: "away" });
    for (const via of ["fast", "node-http"] as const) {
      const caller = callerContext();
      const seen = await echo(d, "away", via, caller.traceparent);
      expect(seen.headers.traceparent).toMatch(
        new RegExp(`^00-${caller.traceId}-[0-9a-f]{16}-01$`),
      );
    }
    // The exporter retries for up to 10 s; a stop waits 2 s for its last spans at most.
    const exit = await d.stop();
    expect(exit, d.stderr().slice(-2000)).toEqual({ code: 0, signal: null });
    expect(`${d.stdout()}${d.stderr()}`).toMatch(
      /tracing: the last spans (were not sent in time|could not be sent)/,
    );
  });

  it("with OTEL_SDK_DISABLED nothing is traced and the client's traceparent reaches the worker as sent", async () => {
    receiver = await startOtlpReceiver();
    const d = await start({
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_BSP_SCHEDULE_DELAY: "100",
      OTEL_SDK_DISABLED: "true",
    });
    await herdClient("connect-h1", d.controlUrl).acquireSession({ sessionId: "off" });
    const caller = callerContext();
    for (const via of ["fast", "node-http"] as const) {
      const seen = await echo(d, "off", via, caller.traceparent);
      expect(seen.headers.traceparent).toBe(caller.traceparent);
    }
    await d.stop();
    expect(receiver.spans).toEqual([]);
    // Off, the SDK is never even loaded.
    expect(otelModules(d)).toBe(0);
  });
});
