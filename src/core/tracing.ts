// The seam between the planes and tracing (src/telemetry, loaded only when the OTEL_* variables
// ask for it, DESIGN.md "Usage and telemetry"). A plane holds a `Tracer | undefined`: undefined
// is tracing off, and then its whole cost is that one check per request or call. Spans are
// joined to the caller's W3C trace context (`traceparent`, `tracestate`) and name herd's own
// facts; what a span is made of is the telemetry room's business. Pure: types, and
// `tracingRequested`, which reads the variables without loading anything.

import type { SessionInfo } from "./types.ts";

/** The W3C trace context a request or call came with (undefined: it had none). */
export interface TraceContext {
  traceparent: string | undefined;
  tracestate: string | undefined;
}

export interface Tracer {
  /** A data-plane request routed to its session, from the moment its worker is known. */
  request(req: TracedRequest): RequestSpan;
  /** An AcquireSession call, from its arrival. */
  acquire(call: TraceContext): AcquireSpan;
  /** Sends the spans still buffered and stops (daemon shutdown). */
  shutdown(): Promise<void>;
}

export interface TracedRequest extends TraceContext {
  method: string;
  /** The request target as the client sent it. */
  target: string;
  /** Which forwarding path serves it. */
  via: "fast" | "node-http";
  session: SessionInfo;
  /** The client's address. */
  client: string | undefined;
}

export interface RequestSpan {
  /** The `traceparent` the worker is sent: this span as its parent. */
  readonly traceparent: string;
  /** The status of the answer the client gets (the worker's or one of herd's). */
  status(code: number): void;
  /** The exchange is over; `error`: it ended without a whole answer (cut, worker gone...). */
  end(error?: string): void;
}

export interface AcquireSpan {
  /** The call's result: its session (with `acquire` when this call bound it), or its error. */
  end(result: { session: SessionInfo } | { error: unknown }): void;
}

const TRUE = /^\s*true\s*$/i;

/**
 * Whether the environment asks for tracing: `OTEL_TRACES_EXPORTER=otlp`, or an OTLP endpoint
 * (`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) while
 * OTEL_TRACES_EXPORTER is unset; never with `OTEL_SDK_DISABLED=true` or an exporter list
 * without `otlp` (`none`, say).
 */
export function tracingRequested(env: NodeJS.ProcessEnv): boolean {
  if (TRUE.test(env.OTEL_SDK_DISABLED ?? "")) return false;
  const listed = (env.OTEL_TRACES_EXPORTER ?? "").trim();
  if (listed !== "") return listed.split(",").some((e) => e.trim() === "otlp");
  return !!env.OTEL_EXPORTER_OTLP_ENDPOINT || !!env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
}
