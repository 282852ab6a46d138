// The control plane's answer to web pages (see src/edge): a Host it does not answer gets 421,
// a browser request from a page of another origin 403 — before routing, so no RPC, /metrics
// or dashboard file is reached. The dashboard (/ui) is the control plane's own origin and
// passes. Refusals are Connect errors (JSON `{code, message}`), or a trailers-only gRPC
// answer for gRPC callers. Stateless but for the AllowedHosts cache.

import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import { AllowedHosts, fromOtherOrigin, misdirected } from "../edge/index.ts";

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** Returns a check that answers and returns true for a request the control plane refuses. */
export function controlWebGuard(
  bound: string,
  allowedHosts: readonly string[] | undefined,
): (
  req: IncomingMessage | Http2ServerRequest,
  res: ServerResponse | Http2ServerResponse,
) => boolean {
  const hosts = new AllowedHosts(bound, allowedHosts);
  return (req, res) => {
    const host = single(req.headers[":authority"]) ?? req.headers.host;
    if (!hosts.allows(host)) {
      refuse(req, res, 421, misdirected("control", host ?? ""));
      return true;
    }
    const browser = {
      host,
      origin: req.headers.origin,
      fetchSite: single(req.headers["sec-fetch-site"]),
      referer: req.headers.referer,
    };
    if (fromOtherOrigin(browser)) {
      refuse(
        req,
        res,
        403,
        `a browser page of another origin (${browser.origin ?? (browser.fetchSite !== undefined ? `Sec-Fetch-Site: ${browser.fetchSite}` : `Referer: ${browser.referer}`)}) cannot call the control plane; only its own dashboard (/ui) can`,
      );
      return true;
    }
    return false;
  };
}

function refuse(
  req: IncomingMessage | Http2ServerRequest,
  res: ServerResponse | Http2ServerResponse,
  status: 403 | 421,
  message: string,
): void {
  const r = res as ServerResponse;
  if (req.headers["content-type"]?.startsWith("application/grpc")) {
    // Trailers-only: gRPC clients read the status from headers of a 200 answer.
    r.writeHead(200, {
      "content-type": req.headers["content-type"],
      "grpc-status": "7", // PERMISSION_DENIED
      "grpc-message": encodeURIComponent(message),
    });
    r.end();
    return;
  }
  const body = JSON.stringify({ code: "permission_denied", message });
  r.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
  });
  r.end(body);
}
