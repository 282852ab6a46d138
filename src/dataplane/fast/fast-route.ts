// How the fast path routes a request head it scanned (http1/request-head.ts): the headers routing and
// web-access.ts read, as slices of the head decoded once, given to the same ctx.web.route as
// node:http's path. Undefined wherever node:http would read the headers differently or answer
// an error: that request is handed to node:http to decide. Stateless.

import { PEER_HEADER } from "../../core/index.ts";
import { nameEquals } from "../http1/bytes.ts";
import type { RequestScan } from "../http1/request-head.ts";
import type { ProxyContext } from "../proxy-context.ts";
import { KEY_HEADER, POOL_HEADER, type Route, TOKEN_HEADER } from "../route.ts";

/** node:http's default server.maxHeadersCount. */
const MAX_HEADERS_COUNT = 2000;

/** What routing and web-access.ts read (Host, and a browser's Origin, Referer, Sec-Fetch-Site). */
const ROUTING_HEADERS = [
  "host",
  "cookie",
  "origin",
  "referer",
  "sec-fetch-site",
  TOKEN_HEADER,
  KEY_HEADER,
  POOL_HEADER,
  PEER_HEADER,
  "authorization",
];

/** The lower-case routing header buf[ns..ne) names, if it names one. */
function routingName(
  buf: Buffer,
  ns: number,
  ne: number,
  sessionHeader: string,
): string | undefined {
  if (nameEquals(buf, ns, ne, sessionHeader)) return sessionHeader;
  for (const name of ROUTING_HEADERS) if (nameEquals(buf, ns, ne, name)) return name;
  return undefined;
}

/** ctx.web.route on the headers it reads of `head` (`text`: buf's head, latin1). */
export function routeHead(
  ctx: ProxyContext,
  buf: Buffer,
  text: string,
  head: RequestScan,
): Route | undefined {
  const { sessionHeader } = ctx;
  const headers: Record<string, string> = {};
  const { fields, fieldCount } = head;
  // node:http drops headers past maxHeadersCount: such a request is not forwarded as is.
  if (fieldCount > MAX_HEADERS_COUNT) return undefined;
  for (let m = 0; m < 4 * fieldCount; m += 4) {
    const ns = fields[m]!;
    const ne = fields[m + 1]!;
    const n = ne - ns;
    // Only names of a routing header's length are compared (most fail that test).
    if (
      n !== 4 &&
      n !== 6 &&
      n !== 7 &&
      n !== 10 &&
      n !== 11 &&
      n !== 12 &&
      n !== 13 &&
      n !== 14 &&
      n !== sessionHeader.length
    ) {
      continue;
    }
    const name = routingName(buf, ns, ne, sessionHeader);
    if (name === undefined) continue;
    // node:http joins repeated headers by rules of its own: leave those requests to it.
    if (headers[name] !== undefined) return undefined;
    headers[name] = text.slice(fields[m + 2]!, fields[m + 3]!);
  }
  // node:http answers 400 to an HTTP/1.1 request without Host (requireHostHeader).
  if (headers.host === undefined) return undefined;
  try {
    return ctx.web.route(text.slice(head.targetStart, head.targetEnd), headers, sessionHeader);
  } catch {
    return undefined;
  }
}
