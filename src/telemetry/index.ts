// The telemetry room: OpenTelemetry tracing (otel-tracer.ts), behind core's Tracer seam.
// `herd serve` imports it dynamically, and only when the OTEL_* variables ask for tracing
// (core's tracingRequested), so an untraced daemon never loads the SDK; nothing else imports it.

export { startTracing } from "./otel-tracer.ts";
