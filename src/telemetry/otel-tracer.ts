// Tracing with the official OpenTelemetry SDK, exported as OTLP over HTTP (protobuf) and
// configured by the standard OTEL_* variables, which the SDK reads itself: the endpoint
// (OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces, or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as is), its
// headers, timeout and compression, the sampler (OTEL_TRACES_SAMPLER, _ARG; default
// parentbased_always_on), the batch processor (OTEL_BSP_*), the resource (OTEL_SERVICE_NAME,
// default "herd"; OTEL_RESOURCE_ATTRIBUTES). `herd serve` loads this module only when
// tracingRequested says so (a dynamic import): an untraced daemon never loads the SDK. The
// headers are the exception: `herd serve` takes them out of its environment (they often carry
// the collector's token; src/sandbox/scrub-environ.ts), so they are read from `env` here.
//
// Spans, each joined to the W3C trace context the caller sent (a missing or malformed one
// starts a new trace):
//   - `herd.v1.HerdService/AcquireSession` (server), with children from the pool's account of
//     the acquire: `queue wait` (an acquire that found no idle worker), `worker start` (the
//     bound worker's start, up to its command being let run) and `readiness` (from there to
//     ready), those two when the worker was started while the acquire waited;
//   - one span per data-plane request (server, named by its method), from the moment its
//     session's worker is known to the end of the answer; the worker is sent `traceparent`
//     with this span as its parent.
//
// Concurrency: spans go to a BatchSpanProcessor, whose queue is bounded (OTEL_BSP_MAX_QUEUE_SIZE):
// a collector that is slow or away costs dropped spans, never a wait on a request or call.

import {
  type Attributes,
  type Context,
  DiagLogLevel,
  diag,
  type Tracer as OtelTracer,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapGetter,
  trace,
} from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { detectResources, envDetector, resourceFromAttributes } from "@opentelemetry/resources";
import { BasicTracerProvider, BatchSpanProcessor } from "@opentelemetry/sdk-trace-base";
import type {
  AcquireSpan,
  Logger,
  RequestSpan,
  SessionInfo,
  TraceContext,
  TracedRequest,
  Tracer,
} from "../core/index.ts";
import { isHerdError } from "../core/index.ts";

const PROTOCOL = "http/protobuf";
const ACQUIRE_SPAN = "herd.v1.HerdService/AcquireSession";
/** ms since the epoch by performance.timeOrigin: the clock of the pool's AcquireTiming. */
const epochNow = () => performance.timeOrigin + performance.now();
/** How long a stopping daemon waits for its last spans to be sent. */
const FLUSH_MS = 2_000;

const getter: TextMapGetter<TraceContext> = {
  get: (carrier, key) =>
    key === "traceparent"
      ? carrier.traceparent
      : key === "tracestate"
        ? carrier.tracestate
        : undefined,
  keys: () => ["traceparent", "tracestate"],
};

/**
 * The daemon's tracer, or undefined (with a warning saying why) when the variables ask for
 * something herd does not export: another protocol than OTLP over HTTP with protobuf.
 */
export function startTracing(logger: Logger, env = process.env): Tracer | undefined {
  const protocol =
    env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL?.trim() || env.OTEL_EXPORTER_OTLP_PROTOCOL?.trim();
  if (protocol && protocol !== PROTOCOL) {
    logger.warn(
      { protocol },
      `tracing is off: herd exports OTLP over HTTP with protobuf only (OTEL_EXPORTER_OTLP_PROTOCOL=${PROTOCOL})`,
    );
    return undefined;
  }
  // The SDK's own complaints (an export that failed, a bad variable) go to herd's log.
  diag.setLogger(
    {
      error: (message, ...args) => logger.warn({ args }, `tracing: ${message}`),
      warn: (message, ...args) => logger.warn({ args }, `tracing: ${message}`),
      info: () => {},
      debug: () => {},
      verbose: () => {},
    },
    { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true },
  );
  const resource = resourceFromAttributes({ "service.name": "herd" }).merge(
    detectResources({ detectors: [envDetector] }),
  );
  const provider = new BasicTracerProvider({
    resource,
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter(otlpHeaders(env)))],
  });
  logger.info(
    {
      endpoint: env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT,
      sampler: env.OTEL_TRACES_SAMPLER || "parentbased_always_on",
    },
    "tracing: spans are exported over OTLP/HTTP",
  );
  return new OtelTracing(provider, logger);
}

/** OTEL_EXPORTER_OTLP_HEADERS, then OTEL_EXPORTER_OTLP_TRACES_HEADERS over it: `k=v,k2=v2`,
 * percent-encoded, as the SDK parses them from process.env. */
function otlpHeaders(env: NodeJS.ProcessEnv): { headers: Record<string, string> } | undefined {
  const headers: Record<string, string> = {};
  for (const list of [env.OTEL_EXPORTER_OTLP_HEADERS, env.OTEL_EXPORTER_OTLP_TRACES_HEADERS]) {
    for (const pair of (list ?? "").split(",")) {
      const at = pair.indexOf("=");
      if (at <= 0) continue;
      const decode = (s: string) => {
        try {
          return decodeURIComponent(s.trim());
        } catch {
          return s.trim();
        }
      };
      headers[decode(pair.slice(0, at))] = decode(pair.slice(at + 1));
    }
  }
  return Object.keys(headers).length > 0 ? { headers } : undefined;
}

class OtelTracing implements Tracer {
  readonly #tracer: OtelTracer;
  readonly #propagator = new W3CTraceContextPropagator();

  constructor(
    private readonly provider: BasicTracerProvider,
    private readonly logger: Logger,
  ) {
    this.#tracer = provider.getTracer("herd");
  }

  #parent(call: TraceContext): Context {
    if (call.traceparent === undefined) return ROOT_CONTEXT;
    return this.#propagator.extract(ROOT_CONTEXT, call, getter);
  }

  request(req: TracedRequest): RequestSpan {
    const span = this.#tracer.startSpan(req.method, { kind: SpanKind.SERVER }, this.#parent(req));
    // A span sampled out records nothing: its attributes are not even made.
    if (span.isRecording()) {
      const q = req.target.indexOf("?");
      const attributes: Attributes = {
        "http.request.method": req.method,
        // The path only: a query may carry herd_token.
        "url.path": q < 0 ? req.target : req.target.slice(0, q),
        "herd.dataplane.path": req.via,
        ...sessionAttributes(req.session),
      };
      if (req.client !== undefined) attributes["client.address"] = req.client;
      span.setAttributes(attributes);
    }
    return new HttpSpan(span);
  }

  acquire(call: TraceContext): AcquireSpan {
    // The pool times an acquire's phases by performance.now() (core's AcquireTiming, ms since
    // the epoch by performance.timeOrigin); the call and its phases get times on that one
    // clock, set to the wall clock of the call's start, so children never stray outside it.
    const wall = Date.now() - epochNow();
    const span = this.#tracer.startSpan(
      ACQUIRE_SPAN,
      {
        startTime: epochNow() + wall,
        kind: SpanKind.SERVER,
        attributes: {
          "rpc.system": "connect_rpc",
          "rpc.service": "herd.v1.HerdService",
          "rpc.method": "AcquireSession",
        },
      },
      this.#parent(call),
    );
    return {
      end: (result) => {
        if ("error" in result) {
          const { error } = result;
          const message = error instanceof Error ? error.message : String(error);
          if (isHerdError(error)) span.setAttribute("herd.error.code", error.code);
          span.setStatus({ code: SpanStatusCode.ERROR, message });
        } else {
          span.setAttributes(sessionAttributes(result.session));
          if (span.isRecording()) this.#phases(span, result.session, wall);
        }
        span.end(epochNow() + wall);
      },
    };
  }

  /** The pool's account of the acquire as child spans (absent: it found the session live). */
  #phases(span: Span, session: SessionInfo, wall: number): void {
    const timing = session.acquire;
    if (timing === undefined) return;
    span.setAttribute("herd.acquire.outcome", timing.outcome);
    const parent = trace.setSpan(ROOT_CONTEXT, span);
    const child = (name: string, start: number, end: number, attributes: Attributes = {}) =>
      this.#tracer.startSpan(name, { startTime: start + wall, attributes }, parent).end(end + wall);
    if (timing.outcome !== "warm") {
      child("queue wait", timing.arrivedAt, timing.arrivedAt + timing.queuedSeconds * 1_000);
    }
    const boot = timing.boot;
    if (boot !== undefined) {
      const worker = { "herd.worker.id": session.workerId };
      child("worker start", boot.startedAt, boot.launchedAt, worker);
      child("readiness", boot.launchedAt, boot.readyAt, worker);
    }
  }

  /**
   * Never rejects, and resolves within FLUSH_MS: a collector that is away (the exporter retries
   * up to OTEL_EXPORTER_OTLP_TIMEOUT, 10 s) costs the last spans, not a slow or failed stop.
   */
  async shutdown(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<"late">((resolve) => {
      timer = setTimeout(() => resolve("late"), FLUSH_MS);
    });
    try {
      const how = await Promise.race([this.provider.shutdown(), late]);
      if (how === "late") this.logger.warn({}, "tracing: the last spans were not sent in time");
    } catch (err) {
      this.logger.warn({ err }, "tracing: the last spans could not be sent");
    } finally {
      clearTimeout(timer);
    }
  }
}

function sessionAttributes(session: SessionInfo): Attributes {
  const attributes: Attributes = {
    "herd.session.id": session.id,
    "herd.pool": session.pool,
    "herd.worker.id": session.workerId,
  };
  if (session.node !== undefined) attributes["herd.node"] = session.node;
  if (session.tenant !== undefined) attributes["herd.tenant"] = session.tenant;
  return attributes;
}

class HttpSpan implements RequestSpan {
  readonly traceparent: string;
  #ended = false;

  constructor(private readonly span: Span) {
    const { traceId, spanId, traceFlags } = span.spanContext();
    this.traceparent = `00-${traceId}-${spanId}-${traceFlags.toString(16).padStart(2, "0")}`;
  }

  status(code: number): void {
    this.span.setAttribute("http.response.status_code", code);
    if (code >= 500) this.span.setStatus({ code: SpanStatusCode.ERROR });
  }

  end(error?: string): void {
    if (this.#ended) return;
    this.#ended = true;
    if (error !== undefined) this.span.setStatus({ code: SpanStatusCode.ERROR, message: error });
    this.span.end();
  }
}
