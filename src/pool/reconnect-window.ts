// When a session's client goes: whether that ends the session, and the window in which the
// client may still come back to the same worker (disconnect_grace).
//
// Invariant: a window closes exactly once, either cancelled (a lease was taken on the session:
// the client is back) or expired (its callback runs, and the pool ends the session with reason
// `reconnect_window_expired`). The pool keeps at most one window per session and cancels it
// when the session ends for any other reason. Single-threaded: cancel after expiry is a no-op.

import type { PoolOptions, SessionOrigin } from "../core/index.ts";

/**
 * Does closing a session's last data-plane connection mean its client is gone?
 * `auto` says yes only for a session the data plane created that has carried a WebSocket: a
 * WebSocket client (a Playwright browser, a terminal) is present exactly while its socket is
 * open, while plain HTTP clients (curl, an agent's requests) open and close a connection per
 * request and come back later; sessions made through the control plane have an explicit
 * lifecycle (release, HoldSession, ttl) and are not ended behind their owner's back.
 */
export function endsWhenClientGoes(
  option: PoolOptions["releaseOnDisconnect"],
  origin: SessionOrigin,
  carriedWebSocket: boolean,
): boolean {
  if (option === "auto") return origin === "data_plane" && carriedWebSocket;
  return option;
}

export class ReconnectWindow {
  /** Epoch ms at which the window expires. */
  readonly deadline: number;
  #timer: NodeJS.Timeout | undefined;

  constructor(graceMs: number, onExpire: () => void) {
    this.deadline = Date.now() + graceMs;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      onExpire();
    }, graceMs);
    this.#timer.unref();
  }

  cancel(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
