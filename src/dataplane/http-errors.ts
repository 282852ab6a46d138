// Data-plane error answers: JSON `{ code, message }` with the status from the one error table
// (src/core/error-table.ts). The table has no status for "the worker refused or died", which
// only the data plane can observe; `badGateway` is that one addition (502, code `unavailable`).
// Protocol-level failures caught by Node before routing (oversized headers, slow headers)
// answer with their HTTP-native status through `protocolError`.
// A worker's stderr never goes into an answer (`body` cuts it): it is the operator's, and with
// `reuse: true` it may be the previous tenant's.

import type { IncomingMessage, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import { errorTable, type HerdErrorCode, isHerdError, withoutStderr } from "../core/index.ts";

export interface DataPlaneError {
  status: number;
  code: HerdErrorCode;
  message: string;
  /** Seconds, sent as Retry-After (503: no worker in time; 429: a tenant's quota). */
  retryAfter?: number;
}

export function fromHerdError(
  code: HerdErrorCode,
  message: string,
  retryAfter?: number,
): DataPlaneError {
  const status = errorTable[code].http;
  if (retryAfter !== undefined) return { status, code, message, retryAfter };
  return status === 503 ? { status, code, message, retryAfter: 1 } : { status, code, message };
}

/**
 * A request another node forwarded for a session this node no longer runs (it ended while the
 * request was on its way): 502, the session's end as the reason, like a worker that died —
 * never a 404, which would tell an auto_acquire client that the id is unknown.
 */
export class EndedBeforeForward extends Error {}

/** Thrown where the answer is already decided and is not in the error table (421). */
export class AnsweredAs extends Error {
  constructor(readonly answer: DataPlaneError) {
    super(answer.message);
  }
}

export function fromError(err: unknown): DataPlaneError {
  if (err instanceof EndedBeforeForward) return badGateway(err.message);
  if (err instanceof AnsweredAs) return err.answer;
  if (isHerdError(err)) return fromHerdError(err.code, err.message, err.retryAfterSeconds);
  return fromHerdError("internal", err instanceof Error ? err.message : String(err));
}

export function badGateway(message: string): DataPlaneError {
  return { status: 502, code: "unavailable", message };
}

export function protocolError(status: number, message: string): DataPlaneError {
  return { status, code: status === 408 ? "deadline_exceeded" : "invalid_argument", message };
}

/** The answer to a request head (or body) that did not arrive in time. */
export function headTimedOut(): DataPlaneError {
  return protocolError(408, "request head or body not received in time");
}

/** A request body slower than the body deadline allows (see body-deadline.ts). */
export function bodyTooSlow(timeoutMs: number, minRate: number): DataPlaneError {
  return protocolError(
    408,
    `request body too slow: herd allows ${timeoutMs} ms plus 1 s per ${minRate} bytes received`,
  );
}

function body(e: DataPlaneError): string {
  return JSON.stringify({ code: e.code, message: withoutStderr(e.message) });
}

export function hasBody(req: IncomingMessage): boolean {
  const length = req.headers["content-length"];
  return (length !== undefined && length !== "0") || req.headers["transfer-encoding"] !== undefined;
}

/**
 * Answers on a ServerResponse whose headers are not sent yet. A request body not read yet
 * would otherwise be read to its end and discarded to keep the connection: close it instead
 * (a refused 100 MB upload must not be drained).
 */
export function sendError(res: ServerResponse, e: DataPlaneError): void {
  if (hasBody(res.req) && !res.req.complete) res.shouldKeepAlive = false;
  const text = body(e);
  const headers: Record<string, string | number> = {
    "Content-Type": "application/json",
    "Content-Length": Buffer.byteLength(text),
  };
  if (e.retryAfter !== undefined) headers["Retry-After"] = e.retryAfter;
  res.writeHead(e.status, headers).end(text);
}

const REASONS: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  408: "Request Timeout",
  409: "Conflict",
  421: "Misdirected Request",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  499: "Client Closed Request",
  500: "Internal Server Error",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
};

/** Answers on a raw socket (failed upgrade, client error) and closes it. */
export function writeErrorToSocket(socket: Duplex, e: DataPlaneError): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const text = body(e);
  const retry = e.retryAfter !== undefined ? `Retry-After: ${e.retryAfter}\r\n` : "";
  socket.end(
    `HTTP/1.1 ${e.status} ${REASONS[e.status] ?? "Error"}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(text)}\r\n${retry}Connection: close\r\n\r\n${text}`,
  );
}
