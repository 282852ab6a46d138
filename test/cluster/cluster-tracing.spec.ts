// Tracing in a cluster (issue 21): a request sent through a node that does not own the session
// is a span on each node, in the caller's trace: the forwarder's a child of the caller's span,
// the owner's a child of the forwarder's, and the worker is sent the owner's span as its parent.

import { randomBytes } from "node:crypto";
import { afterEach, expect, it } from "vitest";
import { eventually } from "../helpers/herd.ts";
import { type OtlpReceiver, startOtlpReceiver } from "../helpers/otlp-receiver.ts";
import { startCluster, type TestCluster } from "./cluster-harness.ts";

let cluster: TestCluster | undefined;
let receiver: OtlpReceiver | undefined;
afterEach(async () => {
  await cluster?.cleanup();
  cluster = undefined;
  await receiver?.close();
  receiver = undefined;
});

it("a request forwarded one hop is a span on each node, the owner's under the forwarder's", async () => {
  const r = await startOtlpReceiver();
  receiver = r;
  cluster = await startCluster(
    ["a", "b"].map((n) => ({
      node: `node-${n}`,
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: r.url,
        OTEL_SERVICE_NAME: `herd-node-${n}`,
        OTEL_BSP_SCHEDULE_DELAY: "100",
      },
    })),
  );
  const c = cluster;
  const { session } = await c.client(c.nodes[0]!).acquireSession({ pool: "w", sessionId: "t" });
  const names = ["node-a", "node-b"];
  const ownerIndex = names.indexOf(session!.node);
  expect(ownerIndex).toBeGreaterThanOrEqual(0);
  const other = c.nodes[1 - ownerIndex]!;

  const traceId = randomBytes(16).toString("hex");
  const callerSpan = randomBytes(8).toString("hex");
  const res = await fetch(`${other.dataUrl}/s/t/echo`, {
    headers: { traceparent: `00-${traceId}-${callerSpan}-01` },
  });
  expect(res.status).toBe(200);
  const seen = (await res.json()) as { headers: Record<string, string> };

  const spans = await eventually(
    "both nodes' spans of the request",
    () => {
      const got = r.spans.filter((s) => s.traceId === traceId && s.name === "GET");
      return got.length === 2 ? got : undefined;
    },
    30_000,
  );
  const forwarder = spans.find(
    (s) => s.resource["service.name"] === `herd-node-${"ab"[1 - ownerIndex]}`,
  )!;
  const owner = spans.find((s) => s.resource["service.name"] === `herd-node-${"ab"[ownerIndex]}`)!;
  expect(forwarder.parentSpanId).toBe(callerSpan);
  expect(owner.parentSpanId).toBe(forwarder.spanId);
  expect(owner.attributes["herd.session.id"]).toBe("t");
  expect(seen.headers.traceparent).toBe(`00-${traceId}-${owner.spanId}-01`);
});
