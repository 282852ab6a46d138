import { describe, expect, it } from "vitest";
import { tracingRequested } from "./tracing.ts";

describe("tracingRequested", () => {
  it("asks for an OTLP endpoint or the otlp exporter, and yields to the off switches", () => {
    expect(tracingRequested({})).toBe(false);
    expect(tracingRequested({ OTEL_SERVICE_NAME: "herd" })).toBe(false);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318" })).toBe(true);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://c/v1/traces" })).toBe(
      true,
    );
    expect(tracingRequested({ OTEL_TRACES_EXPORTER: "otlp" })).toBe(true);
    expect(tracingRequested({ OTEL_TRACES_EXPORTER: "console, otlp" })).toBe(true);
    const endpoint = { OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318" };
    expect(tracingRequested({ ...endpoint, OTEL_SDK_DISABLED: "true" })).toBe(false);
    expect(tracingRequested({ ...endpoint, OTEL_SDK_DISABLED: "TRUE" })).toBe(false);
    expect(tracingRequested({ ...endpoint, OTEL_SDK_DISABLED: "false" })).toBe(true);
    expect(tracingRequested({ ...endpoint, OTEL_TRACES_EXPORTER: "none" })).toBe(false);
    expect(tracingRequested({ ...endpoint, OTEL_TRACES_EXPORTER: "zipkin" })).toBe(false);
  });
});
