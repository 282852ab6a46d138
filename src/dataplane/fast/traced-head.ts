// What a traced request tells its span, read off a scanned request head (its first traceparent
// and tracestate, its method and target). Only when tracing is on: an untraced request never
// looks. Pure.

import type { SessionInfo, TracedRequest } from "../../core/index.ts";
import { equalsLower } from "../http1/bytes.ts";
import type { RequestScan } from "../http1/request-head.ts";

/** `text`: the head decoded (latin1) from scan.start. */
export function tracedRequest(
  buf: Buffer,
  text: string,
  scan: RequestScan,
  session: SessionInfo,
  client: string | undefined,
): TracedRequest {
  const { fields, fieldCount, start } = scan;
  let traceparent: string | undefined;
  let tracestate: string | undefined;
  for (let m = 0; m < 4 * fieldCount; m += 4) {
    const ns = fields[m]!;
    const ne = fields[m + 1]!;
    if (traceparent === undefined && equalsLower(buf, ns, ne, "traceparent")) {
      traceparent = text.slice(fields[m + 2]! - start, fields[m + 3]! - start);
    } else if (tracestate === undefined && equalsLower(buf, ns, ne, "tracestate")) {
      tracestate = text.slice(fields[m + 2]! - start, fields[m + 3]! - start);
    }
  }
  return {
    traceparent,
    tracestate,
    method: scan.method,
    target: text.slice(scan.targetStart - start, scan.targetEnd - start),
    via: "fast",
    session,
    client,
  };
}
