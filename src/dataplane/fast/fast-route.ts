// How the fast path routes a request head it scanned (http1/request-head.ts): the headers routing and
// web-access.ts read, as slices of the head decoded once, given to the same ctx.web.route as
// node:http's path. Undefined wherever node:http would read the headers differently or answer
// an error: that request is handed to node:http to decide. Stateless between calls (one
// module-level scratch array of values, reset at each call; routing never re-enters it).

import { PEER_HEADER } from "../../core/index.ts";
import { nameEquals } from "../http1/bytes.ts";
import type { RequestScan } from "../http1/request-head.ts";
import type { ProxyContext } from "../proxy-context.ts";
import { KEY_HEADER, POOL_HEADER, type Route, TOKEN_HEADER } from "../route.ts";

/** node:http's default server.maxHeadersCount. */
const MAX_HEADERS_COUNT = 2000;

/**
 * What routing and web-access.ts read besides the session header (Host, and a browser's Origin,
 * Referer, Sec-Fetch-Site), by index: the first six are fields of every routing object, the
 * rest (herd's own, rare) are added only when sent.
 */
const ROUTING_HEADERS = [
  "host",
  "cookie",
  "origin",
  "referer",
  "sec-fetch-site",
  "authorization",
  TOKEN_HEADER,
  KEY_HEADER,
  POOL_HEADER,
  PEER_HEADER,
] as const;
/** The session header's index in a request's values: after ROUTING_HEADERS. */
const SESSION = ROUTING_HEADERS.length;

/** The index of the routing header buf[ns..ne) names (SESSION: the session header), or -1. A
 *  session header named as one of ROUTING_HEADERS is read at that one's index. */
function routingIndex(buf: Buffer, ns: number, ne: number, sessionHeader: string): number {
  for (let k = 0; k < SESSION; k++) if (nameEquals(buf, ns, ne, ROUTING_HEADERS[k]!)) return k;
  return nameEquals(buf, ns, ne, sessionHeader) ? SESSION : -1;
}

/** The values of one request's routing headers, by index (undefined: not sent). */
const values = new Array<string | undefined>(SESSION + 1);

/** ctx.web.route on the headers it reads of `head` (`text`: buf's head, latin1). */
export function routeHead(
  ctx: ProxyContext,
  buf: Buffer,
  text: string,
  head: RequestScan,
): Route | undefined {
  const { sessionHeader } = ctx;
  const { fields, fieldCount } = head;
  // node:http drops headers past maxHeadersCount: such a request is not forwarded as is.
  if (fieldCount > MAX_HEADERS_COUNT) return undefined;
  // A loop, not fill(): Array.prototype.fill is a call into the runtime.
  for (let k = 0; k <= SESSION; k++) values[k] = undefined;
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
    const k = routingIndex(buf, ns, ne, sessionHeader);
    if (k < 0) continue;
    // node:http joins repeated headers by rules of its own: leave those requests to it.
    if (values[k] !== undefined) return undefined;
    values[k] = text.slice(fields[m + 2]!, fields[m + 3]!);
  }
  // node:http answers 400 to an HTTP/1.1 request without Host (requireHostHeader).
  if (values[0] === undefined) return undefined;
  // One shape for every request (a literal, then the rare ones by name): the routing code's
  // loads of it stay monomorphic, where stores under computed names made them megamorphic.
  const headers: Record<string, string | undefined> = {
    host: values[0],
    cookie: values[1],
    origin: values[2],
    referer: values[3],
    "sec-fetch-site": values[4],
    authorization: values[5],
  };
  for (let k = 6; k < SESSION; k++)
    if (values[k] !== undefined) headers[ROUTING_HEADERS[k]!] = values[k];
  if (values[SESSION] !== undefined) headers[sessionHeader] = values[SESSION];
  try {
    return ctx.web.route(text.slice(head.targetStart, head.targetEnd), headers, sessionHeader);
  } catch {
    return undefined;
  }
}
