// HoldSession's dead-man's switch: a Hold ties a session's life to one stream.
//
// Invariant: a hold ends exactly once, for the first of: its stream's client went away (the
// request signal aborted, or the stream was closed), it was not renewed within the grace, the
// session ended for another reason, or the server is shutting down. A hold not renewed ends
// its session at once; a stream that went away opens the session's reconnect window
// (disconnect_grace): a new HoldSession for the id within it re-attaches to the same worker,
// else the session ends when the window runs out — a session never outlives a vanished holder
// by more than that. While the hold is open it keeps a "hold" lease, so the session never
// idles out under it.
//
// Concurrency: single-threaded; every trigger calls end(), which is idempotent, so the races
// between a timer, an abort and a renewal all settle on whichever came first.

import type { Lease, Logger, SessionDirectory, SessionEnd, SessionInfo } from "../core/index.ts";
import { HerdError, newToken } from "../core/index.ts";

export type HoldEnd =
  | { kind: "client_gone" }
  | { kind: "not_renewed" }
  | { kind: "session_ended"; end: SessionEnd | undefined }
  | { kind: "shutdown" };

export class Hold {
  readonly id = newToken();
  private expiresAtMs: number;
  private timer: NodeJS.Timeout | undefined;
  private ended: HoldEnd | undefined;
  private wake: (() => void) | undefined;
  private readonly detach: () => void;

  constructor(
    readonly session: SessionInfo,
    readonly graceMs: number,
    private readonly lease: Lease,
    private readonly onEnd: (hold: Hold, why: HoldEnd) => void,
    signals: { client: AbortSignal; shutdown: AbortSignal },
  ) {
    this.expiresAtMs = Date.now() + graceMs;
    this.arm();
    const clientGone = () => this.end({ kind: "client_gone" });
    const shutdown = () => this.end({ kind: "shutdown" });
    const sessionEnded = () =>
      this.end({ kind: "session_ended", end: lease.ended.reason as SessionEnd | undefined });
    signals.client.addEventListener("abort", clientGone);
    signals.shutdown.addEventListener("abort", shutdown);
    lease.ended.addEventListener("abort", sessionEnded);
    this.detach = () => {
      signals.client.removeEventListener("abort", clientGone);
      signals.shutdown.removeEventListener("abort", shutdown);
      lease.ended.removeEventListener("abort", sessionEnded);
    };
    if (signals.client.aborted) clientGone();
    else if (signals.shutdown.aborted) shutdown();
    else if (lease.ended.aborted) sessionEnded();
  }

  /** With a grace of 0 the hold never expires for lack of renewal. */
  get expiresAt(): Date | undefined {
    return this.graceMs > 0 ? new Date(this.expiresAtMs) : undefined;
  }

  get endedWith(): HoldEnd | undefined {
    return this.ended;
  }

  renew(): Date | undefined {
    this.expiresAtMs = Date.now() + this.graceMs;
    this.arm();
    return this.expiresAt;
  }

  /** Resolves after `ms`, or at once when the hold ends; returns how it ended, if it did. */
  wait(ms: number): Promise<HoldEnd | undefined> {
    if (this.ended) return Promise.resolve(this.ended);
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wake = undefined;
        resolve(this.ended);
      }, ms);
      this.wake = () => {
        clearTimeout(t);
        this.wake = undefined;
        resolve(this.ended);
      };
    });
  }

  end(why: HoldEnd): void {
    if (this.ended) return;
    this.ended = why;
    clearTimeout(this.timer);
    this.detach();
    this.lease.close();
    this.onEnd(this, why);
    this.wake?.();
  }

  private arm(): void {
    if (this.graceMs <= 0) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.end({ kind: "not_renewed" }), this.graceMs);
  }
}

/** Every open hold of the daemon, by id, for RenewHold. */
export class HoldRegistry {
  private readonly holds = new Map<string, Hold>();

  constructor(
    private readonly directory: SessionDirectory,
    private readonly logger: Logger,
  ) {}

  open(
    session: SessionInfo,
    graceMs: number,
    signals: { client: AbortSignal; shutdown: AbortSignal },
  ): Hold {
    const lease = this.directory.lease(session.id, "hold");
    const hold = new Hold(session, graceMs, lease, (h, why) => this.ended(h, why), signals);
    if (!hold.endedWith) this.holds.set(hold.id, hold);
    return hold;
  }

  renew(sessionId: string, holdId: string): Date | undefined {
    const hold = this.holds.get(holdId);
    if (!hold || hold.session.id !== sessionId) {
      throw new HerdError(
        "not_found",
        `no open hold ${JSON.stringify(holdId.slice(0, 64))} on session ${JSON.stringify(sessionId.slice(0, 128))} (it may have ended)`,
      );
    }
    return hold.renew();
  }

  get size(): number {
    return this.holds.size;
  }

  private ended(hold: Hold, why: HoldEnd): void {
    this.holds.delete(hold.id);
    const sessionId = hold.session.id;
    const log = {
      pool: hold.session.pool,
      session: sessionId,
      worker: hold.session.workerId,
      hold: hold.id,
    };
    if (why.kind === "client_gone") {
      this.logger.info({ ...log, reason: why.kind }, "hold ended: its client is gone");
      this.directory.clientGone(sessionId);
    } else if (why.kind === "not_renewed") {
      const end: SessionEnd = { kind: "expired", reason: "hold_expired" };
      this.logger.info({ ...log, reason: why.kind }, "hold ended: ending its session");
      this.directory.release(sessionId, { end }).catch((err: unknown) => {
        // Already gone (released elsewhere in the meantime) is the outcome we wanted.
        if (!(err instanceof HerdError && err.code === "not_found")) {
          this.logger.error({ ...log, err }, "could not end a held session");
        }
      });
    }
  }
}
