// What both HTTP forwarders (node:http's, proxy-request.ts, and the fast path, fast-exchange.ts)
// decide the same way when a worker fails: which failures are retried once, the 502 text, and
// what data_timeout does (504, and with kill_on_data_timeout the session ends). Stateless.

import type { SessionInfo } from "../core/index.ts";
import { badGateway, type DataPlaneError, fromHerdError } from "./http-errors.ts";
import type { ProxyContext } from "./proxy-context.ts";

const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"]);
const STALE_SOCKET = new Set(["ECONNRESET", "EPIPE"]);

/**
 * Retried once: a reused keep-alive socket that failed before any response byte, for an
 * idempotent request without a body (the worker closed an idle socket as we picked it).
 */
export function retryable(method: string, body: boolean, reused: boolean, code: string): boolean {
  return reused && !body && IDEMPOTENT.has(method) && STALE_SOCKET.has(code);
}

export function workerFailed(session: SessionInfo, cause: string): DataPlaneError {
  if (session.peer !== undefined) {
    // The hop failed, not (as far as this node can tell) the worker: say which node.
    return badGateway(
      `node ${session.node ?? "(unknown)"}, which runs session ${session.id}, did not answer: ${cause}`,
    );
  }
  return badGateway(
    `worker ${session.workerId} (pid ${session.workerPid}) of session ${session.id} failed: ${cause}`,
  );
}

/**
 * The worker sent no response within data_timeout: `answer` gets the 504 first (ending the
 * session aborts its leases, whose listeners would otherwise answer 502), then the session
 * ends if kill_on_data_timeout says so.
 */
export function dataTimedOut(
  ctx: ProxyContext,
  session: SessionInfo,
  ms: number,
  answer: (error: DataPlaneError) => void,
): void {
  answer(
    fromHerdError(
      "deadline_exceeded",
      `data_timeout: worker ${session.workerId} (pid ${session.workerPid}) sent no response within ${ms} ms`,
    ),
  );
  if (!ctx.directory.poolOptions(session.pool).killOnDataTimeout) return;
  ctx.directory
    .release(session.id, { kill: true, end: { kind: "lost", reason: "data_timeout" } })
    .catch((err) => ctx.logger.warn({ err, session: session.id }, "data_timeout: release failed"));
}
