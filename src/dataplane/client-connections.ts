// A session's client connections: the data leases that keep it alive, and the
// connection_opened / connection_closed events watchers see (WatchSessions, metrics).
//
// A "connection" is a client TCP connection carrying a session's traffic, or a WebSocket
// tunnel. An HTTP keep-alive connection takes one `http` lease per session it carries, on its
// first request for that session, and closes them all when the socket closes: idle keep-alive
// time counts as connected, so release_on_disconnect never ends a session between two requests
// of one connection. A tunnel holds one `websocket` lease from handshake to close. Per-request
// leases and events would also flood the event log at thousands of requests per second.
//
// Invariant: every lease taken here is closed exactly once, when its socket or tunnel closes
// (or at once, for a socket that closed while its first request waited for a worker).
// Each socket's bytes count for the session it carries (traffic-meter.ts).
// Single-threaded; the WeakMap lets sockets go without cleanup.

import type { Socket } from "node:net";
import type { Lease, SessionInfo, SessionRoutes } from "../core/index.ts";
import { TrafficMeter } from "./traffic-meter.ts";

type Base = Pick<SessionInfo, "pool"> & {
  sessionId: string;
  workerId: string;
  workerPid: number;
  reason: "http" | "websocket";
};

interface Carried {
  event: Base;
  lease: Lease;
}

function base(session: SessionInfo, reason: Base["reason"]): Base {
  return {
    pool: session.pool,
    sessionId: session.id,
    workerId: session.workerId,
    workerPid: session.workerPid,
    reason,
  };
}

export class ClientConnections {
  readonly #carried = new WeakMap<Socket, Map<string, Carried>>();
  readonly #directory: SessionRoutes;
  readonly #meter = new TrafficMeter();

  constructor(directory: SessionRoutes) {
    this.#directory = directory;
  }

  /**
   * The lease of `session` on this HTTP connection: taken on its first request for the session
   * (or the first after that session ended), held until the socket closes. Throws not_found
   * for a session that has just ended.
   */
  http(socket: Socket, session: SessionInfo): Lease {
    let carried = this.#carried.get(socket);
    const current = carried?.get(session.id);
    if (current && !current.lease.ended.aborted) {
      this.#meter.attribute(socket, current.lease.traffic);
      return current.lease;
    }
    const lease = this.#directory.lease(session.id, "http");
    this.#meter.attribute(socket, lease.traffic);
    if (carried === undefined) {
      const sessions = new Map<string, Carried>();
      carried = sessions;
      this.#carried.set(socket, sessions);
      socket.once("close", () => {
        for (const c of sessions.values()) this.#close(c);
      });
    }
    if (current) this.#close(current);
    const opened = { event: base(session, "http"), lease };
    carried.set(session.id, opened);
    this.#directory.publish({ type: "connection_opened", ...opened.event });
    // Gone while its request waited for a worker: the close event has already fired.
    if (socket.destroyed) {
      carried.delete(session.id);
      this.#close(opened);
    }
    return lease;
  }

  /** A WebSocket tunnel's lease; closing it also reports the tunnel closed. */
  websocket(session: SessionInfo, socket: Socket): Lease {
    const lease = this.#directory.lease(session.id, "websocket");
    this.#meter.attribute(socket, lease.traffic);
    const opened = { event: base(session, "websocket"), lease };
    this.#directory.publish({ type: "connection_opened", ...opened.event });
    let open = true;
    return {
      sessionId: lease.sessionId,
      ended: lease.ended,
      traffic: lease.traffic,
      close: () => {
        if (!open) return;
        open = false;
        this.#close(opened);
      },
    };
  }

  /** The event first: closing the last lease may end the session (release_on_disconnect). */
  #close(c: Carried): void {
    this.#directory.publish({ type: "connection_closed", ...c.event });
    c.lease.close();
  }
}
