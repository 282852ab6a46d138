// A session held through HoldSession: the daemon ends it the moment this stream goes away, so
// a crashed or killed caller can never leak a worker. While the hold lives, a renewal loop calls
// RenewHold every third of the server's `heartbeat_grace` (the stream is server-to-client only).
// A renewal may take until a whole grace has passed since the last success: a loaded daemon
// that still answers within the grace keeps the hold.
//
// Invariant: `signal` aborts exactly once, when the hold is over for any reason: the stream
// ended or failed, renewals were refused (NOT_FOUND) or none succeeded within a grace, the
// caller's signal aborted, or the caller released it. Its reason is a HerdClientError.
// Concurrency: at most one RenewHold is in flight (each schedules the next when it settles);
// everything stops once `signal` aborts.

import { durationMs } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import type { HoldSessionResponse, Session } from "../gen/herd/v1/herd_pb.ts";
import { HerdClientError } from "./errors.ts";
import { HerdSession, type ReleaseFn, type ReleaseOptions } from "./session.ts";

/** What a hold needs from the client: the stream already opened, and the renew call. */
export interface HoldChannel {
  /** The HoldSession stream, opened with `streamAbort.signal`. */
  stream: AsyncIterable<HoldSessionResponse>;
  streamAbort: AbortController;
  renew(sessionId: string, holdId: string, timeoutMs: number): Promise<unknown>;
  release: ReleaseFn;
  /** The caller's signal: aborting it ends the hold. */
  signal?: AbortSignal | undefined;
}

export class HeldSession extends HerdSession {
  /** Identifies this hold to RenewHold. */
  readonly holdId: string;
  /** How long the daemon waits for a renewal before ending the hold (0: no renewals needed). */
  readonly heartbeatGraceMs: number;
  readonly #broken = new AbortController();
  readonly #streamAbort: AbortController;
  #releasing: Promise<void> | undefined;

  constructor(
    info: Session,
    holdId: string,
    graceMs: number,
    release: ReleaseFn,
    streamAbort: AbortController,
  ) {
    super(info, release);
    this.holdId = holdId;
    this.heartbeatGraceMs = graceMs;
    this.#streamAbort = streamAbort;
  }

  /** Fires when the hold breaks or ends; `signal.reason` is a HerdClientError saying why. */
  get signal(): AbortSignal {
    return this.#broken.signal;
  }

  /**
   * Ends the session (ReleaseSession, so `kill` applies) and closes the hold stream.
   * Idempotent. `signal` fires first, with a "canceled" reason.
   */
  override release(options: ReleaseOptions = {}): Promise<void> {
    this.#releasing ??= this.#release(options);
    return this.#releasing;
  }

  async #release(options: ReleaseOptions): Promise<void> {
    const live = !this.signal.aborted;
    this.#over(new HerdClientError("hold released", Code.Canceled));
    try {
      if (live) await super.release(options);
    } finally {
      this.#streamAbort.abort(this.signal.reason);
    }
  }

  /** @internal Marks the hold over and closes the stream; the first reason wins. */
  end(reason: HerdClientError): void {
    this.#over(reason);
    this.#streamAbort.abort(reason);
  }

  #over(reason: HerdClientError): void {
    if (!this.#broken.signal.aborted) this.#broken.abort(reason);
  }
}

/** Reads the first message, then keeps the hold alive in the background. */
export async function startHold(ch: HoldChannel): Promise<HeldSession> {
  const it = ch.stream[Symbol.asyncIterator]();
  const onCallerAbort = () =>
    ch.streamAbort.abort(new HerdClientError("hold aborted by the caller", Code.Canceled));
  if (ch.signal?.aborted) onCallerAbort();
  ch.signal?.addEventListener("abort", onCallerAbort, { once: true });

  let first: IteratorResult<HoldSessionResponse>;
  try {
    first = await it.next();
  } catch (err) {
    ch.signal?.removeEventListener("abort", onCallerAbort);
    throw HerdClientError.from(err);
  }
  if (first.done || first.value.kind.case !== "session") {
    ch.streamAbort.abort();
    ch.signal?.removeEventListener("abort", onCallerAbort);
    throw new HerdClientError("HoldSession stream did not start with the session", Code.Internal);
  }
  const graceMs =
    first.value.heartbeatGrace === undefined ? 0 : durationMs(first.value.heartbeatGrace);
  const held = new HeldSession(
    first.value.kind.value,
    first.value.holdId,
    graceMs,
    ch.release,
    ch.streamAbort,
  );
  held.signal.addEventListener("abort", () =>
    ch.signal?.removeEventListener("abort", onCallerAbort),
  );
  ch.streamAbort.signal.addEventListener("abort", () =>
    held.end(HerdClientError.from(ch.streamAbort.signal.reason)),
  );

  void drain(it, held);
  if (graceMs > 0) renewLoop(ch, held, graceMs);
  return held;
}

/** Consumes heartbeats until the stream ends; its end is the hold's end. */
async function drain(it: AsyncIterator<HoldSessionResponse>, held: HeldSession): Promise<void> {
  try {
    while (!(await it.next()).done) {
      // Heartbeats carry nothing the client must act on; renewal runs on its own clock.
    }
    held.end(new HerdClientError("hold stream ended by the server", Code.Unavailable));
  } catch (err) {
    held.end(HerdClientError.from(err));
  }
}

function renewLoop(ch: HoldChannel, held: HeldSession, graceMs: number): void {
  const every = Math.max(graceMs / 3, 10);
  let lastOk = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const tick = async () => {
    try {
      await ch.renew(held.id, held.holdId, Math.max(graceMs - (Date.now() - lastOk), every));
      lastOk = Date.now();
    } catch (err) {
      const e = HerdClientError.from(err);
      if (e.code === Code.NotFound) {
        held.end(new HerdClientError(`hold refused by the daemon: ${e.message}`, e.code));
      } else if (Date.now() - lastOk > graceMs) {
        held.end(
          new HerdClientError(`hold not renewed within ${graceMs} ms: ${e.message}`, e.code, {
            cause: e,
          }),
        );
      }
    }
    if (!held.signal.aborted) schedule();
  };
  const schedule = () => {
    timer = setTimeout(tick, every);
    timer.unref();
  };
  held.signal.addEventListener("abort", () => clearTimeout(timer), { once: true });
  schedule();
}
