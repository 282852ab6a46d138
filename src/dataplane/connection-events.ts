// connection_opened / connection_closed events for watchers (WatchSessions, metrics).
//
// A "connection" is a client TCP connection carrying a session's traffic, or a WebSocket
// tunnel: an HTTP keep-alive connection announces each session it carries once, on its first
// request for it, and closes them all when the socket closes. Per-request events would flood
// the event log (two events per request at thousands of requests per second would push
// everything else out of the resumption history). Busy-ness is tracked separately, by a data
// lease per request in flight. Single-threaded; the WeakMap lets sockets go without cleanup.

import type { Socket } from "node:net";
import type { SessionDirectory, SessionInfo } from "../pool/types.ts";

type Base = Pick<SessionInfo, "pool"> & {
  sessionId: string;
  workerId: string;
  workerPid: number;
  reason: "http" | "websocket";
};

function base(session: SessionInfo, reason: Base["reason"]): Base {
  return {
    pool: session.pool,
    sessionId: session.id,
    workerId: session.workerId,
    workerPid: session.workerPid,
    reason,
  };
}

export class ConnectionEvents {
  readonly #seen = new WeakMap<Socket, Map<string, Base>>();
  readonly #directory: SessionDirectory;

  constructor(directory: SessionDirectory) {
    this.#directory = directory;
  }

  /** An HTTP request of `session` arrived on `socket`. */
  http(socket: Socket, session: SessionInfo): void {
    let carried = this.#seen.get(socket);
    if (carried === undefined) {
      const sessions = new Map<string, Base>();
      carried = sessions;
      this.#seen.set(socket, sessions);
      socket.once("close", () => {
        for (const event of sessions.values()) {
          this.#directory.publish({ type: "connection_closed", ...event });
        }
      });
    }
    if (carried.has(session.id)) return;
    const event = base(session, "http");
    carried.set(session.id, event);
    this.#directory.publish({ type: "connection_opened", ...event });
  }

  /** A WebSocket tunnel opened; call the result once when it closes. */
  websocket(session: SessionInfo): () => void {
    const event = base(session, "websocket");
    this.#directory.publish({ type: "connection_opened", ...event });
    return () => this.#directory.publish({ type: "connection_closed", ...event });
  }
}
