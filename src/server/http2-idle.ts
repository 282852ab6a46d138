// Deadlines for HTTP/2 sessions on the control plane that carry no call: a session must open
// its first stream within `headerTimeoutMs` of the preface (pre-auth connections are not kept
// around), and a session with no open stream for `idleTimeoutMs` is closed with GOAWAY.
//
// Invariant: a timer runs only while the session has no open stream, so a long-lived stream
// (HoldSession, WatchSessions: quiet for minutes by design) is never cut by these deadlines.
// Single-threaded; the timers die with the session.

import type { Http2Session } from "node:http2";

export interface Http2IdleLimits {
  /** From the preface to the first stream; 0: none. */
  headerTimeoutMs: number;
  /** With no stream open; 0: none. */
  idleTimeoutMs: number;
}

export function limitIdleHttp2Session(session: Http2Session, limits: Http2IdleLimits): void {
  let open = 0;
  let timer: NodeJS.Timeout | undefined;
  const arm = (ms: number, action: () => void) => {
    clearTimeout(timer);
    timer = ms > 0 ? setTimeout(action, ms) : undefined;
  };
  arm(limits.headerTimeoutMs, () => session.destroy());
  session.on("stream", (stream) => {
    open++;
    clearTimeout(timer);
    stream.once("close", () => {
      open--;
      if (open === 0 && !session.closed) arm(limits.idleTimeoutMs, () => session.close());
    });
  });
  session.once("close", () => clearTimeout(timer));
}
