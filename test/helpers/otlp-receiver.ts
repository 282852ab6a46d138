// A small OTLP/HTTP trace receiver for tests: POST /v1/traces with the real protobuf payload
// (ExportTraceServiceRequest of opentelemetry-proto's collector/trace/v1, gzip or not), decoded
// field by field with @bufbuild/protobuf's wire reader, answered with an empty
// ExportTraceServiceResponse as a collector does. Not the OpenTelemetry Collector: no registry
// reachable here ships a binary of it, and a Go build of otelcol is too slow for a test run.
// Listens on loopback port 0; each test closes its own.

import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { gunzipSync } from "node:zlib";
import { BinaryReader, type WireType } from "@bufbuild/protobuf/wire";

export type AttributeValue = string | boolean | number | bigint | undefined;

export interface ReceivedSpan {
  /** Hex, as in a traceparent. */
  traceId: string;
  spanId: string;
  /** "" for a root span. */
  parentSpanId: string;
  name: string;
  /** OTLP's SpanKind: 1 internal, 2 server, 3 client. */
  kind: number;
  startNs: bigint;
  endNs: bigint;
  attributes: Record<string, AttributeValue>;
  /** OTLP's StatusCode: 0 unset, 1 ok, 2 error. */
  status: { code: number; message: string };
  /** The resource's attributes (service.name...). */
  resource: Record<string, AttributeValue>;
}

export interface OtlpReceiver {
  /** http://127.0.0.1:PORT, for OTEL_EXPORTER_OTLP_ENDPOINT. */
  url: string;
  spans: ReceivedSpan[];
  /** Requests that were not a decodable POST /v1/traces (what went wrong, each). */
  rejected: string[];
  /** The HTTP headers of each export received (the exporter's OTEL_EXPORTER_OTLP_HEADERS). */
  headers: IncomingHttpHeaders[];
  close(): Promise<void>;
}

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

/** Reads a length-delimited submessage with `read(reader, field, wireType)` per field. */
function message(bytes: Uint8Array, read: (r: BinaryReader, no: number, wt: WireType) => void) {
  const r = new BinaryReader(bytes);
  while (r.pos < r.len) {
    const [no, wt] = r.tag();
    read(r, no, wt);
  }
}

function anyValue(bytes: Uint8Array): AttributeValue {
  let value: AttributeValue;
  message(bytes, (r, no, wt) => {
    if (no === 1) value = r.string();
    else if (no === 2) value = r.bool();
    else if (no === 3) value = r.int64();
    else if (no === 4) value = r.double();
    else r.skip(wt);
  });
  return value;
}

function keyValue(bytes: Uint8Array, into: Record<string, AttributeValue>): void {
  let key = "";
  let value: AttributeValue;
  message(bytes, (r, no, wt) => {
    if (no === 1) key = r.string();
    else if (no === 2) value = anyValue(r.bytes());
    else r.skip(wt);
  });
  into[key] = value;
}

function span(bytes: Uint8Array, resource: Record<string, AttributeValue>): ReceivedSpan {
  const s: ReceivedSpan = {
    traceId: "",
    spanId: "",
    parentSpanId: "",
    name: "",
    kind: 0,
    startNs: 0n,
    endNs: 0n,
    attributes: {},
    status: { code: 0, message: "" },
    resource,
  };
  message(bytes, (r, no, wt) => {
    if (no === 1) s.traceId = hex(r.bytes());
    else if (no === 2) s.spanId = hex(r.bytes());
    else if (no === 4) s.parentSpanId = hex(r.bytes());
    else if (no === 5) s.name = r.string();
    else if (no === 6) s.kind = r.int32();
    else if (no === 7) s.startNs = BigInt(r.fixed64());
    else if (no === 8) s.endNs = BigInt(r.fixed64());
    else if (no === 9) keyValue(r.bytes(), s.attributes);
    else if (no === 15) {
      message(r.bytes(), (st, sno, swt) => {
        if (sno === 2) s.status.message = st.string();
        else if (sno === 3) s.status.code = st.int32();
        else st.skip(swt);
      });
    } else r.skip(wt);
  });
  return s;
}

/** ExportTraceServiceRequest → its spans. */
export function decodeTraces(body: Uint8Array): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  message(body, (r, no, wt) => {
    if (no !== 1) return r.skip(wt);
    // ResourceSpans: resource = 1, scope_spans = 2.
    const resource: Record<string, AttributeValue> = {};
    const scopes: Uint8Array[] = [];
    message(r.bytes(), (rs, rno, rwt) => {
      if (rno === 1) {
        message(rs.bytes(), (res, ano, awt) => {
          if (ano === 1) keyValue(res.bytes(), resource);
          else res.skip(awt);
        });
      } else if (rno === 2) scopes.push(rs.bytes());
      else rs.skip(rwt);
    });
    // ScopeSpans: spans = 2.
    for (const scope of scopes) {
      message(scope, (ss, sno, swt) => {
        if (sno === 2) out.push(span(ss.bytes(), resource));
        else ss.skip(swt);
      });
    }
  });
  return out;
}

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const rejected: string[] = [];
  const headers: IncomingHttpHeaders[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const type = req.headers["content-type"] ?? "";
      if (req.method !== "POST" || req.url !== "/v1/traces" || type !== "application/x-protobuf") {
        rejected.push(`${req.method} ${req.url} ${type}`);
        res.writeHead(404).end();
        return;
      }
      try {
        let body = Buffer.concat(chunks);
        if (req.headers["content-encoding"] === "gzip") body = gunzipSync(body);
        spans.push(...decodeTraces(body));
        headers.push(req.headers);
      } catch (err) {
        rejected.push(`undecodable: ${(err as Error).message}`);
        res.writeHead(400).end();
        return;
      }
      res.writeHead(200, { "content-type": "application/x-protobuf" }).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    spans,
    rejected,
    headers,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
