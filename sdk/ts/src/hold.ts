// A session held through HoldSession: the daemon ends it when the holder goes away, so a crashed
// or killed caller can never leak a worker. While the hold lives, a renewal loop calls RenewHold
// every third of the server's `heartbeat_grace` (the stream is server-to-client only). A renewal
// may take until a whole grace has passed since the last success: a loaded daemon that still
// answers within the grace keeps the hold.
//
// A transient stream failure (connection reset, UNAVAILABLE, a cut stream) is not the end: the
// hold reopens HoldSession for the same id with `attach_only` (never a new session), backing
// off, until a grace has passed since the last success. The daemon's reconnect window keeps
// the session meanwhile; a session that is gone answers NOT_FOUND and the hold ends. The
// HeldSession stays the same object (id, worker, token); only `holdId` changes.
//
// Invariant: `signal` aborts exactly once, when the hold is over for any reason: the stream
// ended cleanly or failed for good, the session could not be re-attached within the grace,
// renewals were refused and re-attaching found no session, the caller's signal aborted, or the
// caller released it. Its reason is a HerdClientError. At most one stream is open at a time.
// Concurrency: at most one RenewHold is in flight (each schedules the next when it settles), and
// none while the hold is re-attaching; everything stops once `signal` aborts.

import { durationMs } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import type { HoldSessionResponse, Session } from "../gen/herd/v1/herd_pb.ts";
import { HerdClientError } from "./errors.ts";
import { HerdSession, type ReleaseFn, type ReleaseOptions } from "./session.ts";

/** What a hold needs from the client: opening its stream, and the renew call. */
export interface HoldChannel {
  /**
   * Opens a HoldSession stream that closes when `signal` aborts: the first as the caller asked;
   * with `reattachTo`, one that re-attaches to that live session (`attach_only`).
   */
  open(reattachTo: string | undefined, signal: AbortSignal): AsyncIterable<HoldSessionResponse>;
  renew(sessionId: string, holdId: string, timeoutMs: number): Promise<unknown>;
  release: ReleaseFn;
  /** The client's tenant key, for the held session's data-plane headers. */
  key?: string | undefined;
  /** The caller's signal: aborting it ends the hold. */
  signal?: AbortSignal | undefined;
}

/** Failures worth re-attaching after: the connection, not the daemon, said no. */
const TRANSIENT = new Set([Code.Unavailable, Code.Aborted, Code.Internal, Code.Unknown]);
const BACKOFF_FIRST_MS = 50;
const BACKOFF_MAX_MS = 1_000;

/** One open HoldSession stream, past its first message. */
interface Stream {
  it: AsyncIterator<HoldSessionResponse>;
  abort: AbortController;
  session: Session;
  holdId: string;
  graceMs: number;
}

export class HeldSession extends HerdSession {
  /** How long the daemon waits for a renewal before ending the hold (0: no renewals needed). */
  readonly heartbeatGraceMs: number;
  readonly #broken = new AbortController();
  #stream: Stream;
  #reattaches = 0;
  #releasing: Promise<void> | undefined;

  /** @internal */
  constructor(stream: Stream, release: ReleaseFn, key?: string) {
    super(stream.session, release, key);
    this.heartbeatGraceMs = stream.graceMs;
    this.#stream = stream;
  }

  /** Identifies the current hold to RenewHold; a new one after each re-attach. */
  get holdId(): string {
    return this.#stream.holdId;
  }

  /** How often the hold re-attached after a transient stream failure. */
  get reattaches(): number {
    return this.#reattaches;
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
      this.#stream.abort.abort(this.signal.reason);
    }
  }

  /** @internal Marks the hold over and closes the stream; the first reason wins. */
  end(reason: HerdClientError): void {
    this.#over(reason);
    this.#stream.abort.abort(reason);
  }

  /** @internal The stream that replaces a failed one; closed at once if the hold is over. */
  reattached(stream: Stream): void {
    this.#stream = stream;
    this.#reattaches++;
    if (this.signal.aborted) stream.abort.abort(this.signal.reason);
  }

  #over(reason: HerdClientError): void {
    if (!this.#broken.signal.aborted) this.#broken.abort(reason);
  }
}

/** Opens a stream and reads its first message, which must be the session. */
async function openStream(
  ch: HoldChannel,
  reattachTo: string | undefined,
  until: AbortSignal,
): Promise<Stream> {
  const abort = new AbortController();
  const stop = () => abort.abort(until.reason);
  if (until.aborted) stop();
  until.addEventListener("abort", stop, { once: true });
  const it = ch.open(reattachTo, abort.signal)[Symbol.asyncIterator]();
  try {
    const first = await it.next();
    if (first.done || first.value.kind.case !== "session") {
      throw new HerdClientError("HoldSession stream did not start with the session", Code.Internal);
    }
    const m = first.value;
    const session = first.value.kind.value;
    const graceMs = m.heartbeatGrace === undefined ? 0 : durationMs(m.heartbeatGrace);
    return { it, abort, session, holdId: m.holdId, graceMs };
  } catch (err) {
    abort.abort();
    throw until.aborted ? HerdClientError.from(until.reason) : HerdClientError.from(err);
  } finally {
    until.removeEventListener("abort", stop);
  }
}

/** Opens the hold, then keeps it alive in the background. */
export async function startHold(ch: HoldChannel): Promise<HeldSession> {
  const callerAbort = new AbortController();
  const onCallerAbort = () =>
    callerAbort.abort(new HerdClientError("hold aborted by the caller", Code.Canceled));
  if (ch.signal?.aborted) onCallerAbort();
  ch.signal?.addEventListener("abort", onCallerAbort, { once: true });
  let first: Stream;
  try {
    first = await openStream(ch, undefined, callerAbort.signal);
  } catch (err) {
    ch.signal?.removeEventListener("abort", onCallerAbort);
    throw err;
  }
  const held = new HeldSession(first, ch.release, ch.key);
  callerAbort.signal.addEventListener("abort", () => held.end(callerAbort.signal.reason));
  held.signal.addEventListener("abort", () =>
    ch.signal?.removeEventListener("abort", onCallerAbort),
  );
  new Keeper(ch, held, first).start();
  return held;
}

/** Drains the stream, renews the hold, and re-attaches after transient stream failures. */
class Keeper {
  /** When the daemon last showed the hold alive: a message, a renewal, a re-attach. */
  #lastOk = Date.now();
  #reattaching = false;
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly ch: HoldChannel,
    private readonly held: HeldSession,
    /** The open stream; replaced by each re-attach. */
    private stream: Stream,
  ) {}

  start(): void {
    void this.#drain(this.stream);
    if (this.held.heartbeatGraceMs > 0) {
      this.held.signal.addEventListener("abort", () => clearTimeout(this.#timer), { once: true });
      this.#schedule();
    }
  }

  /** Consumes heartbeats until the stream ends; then the hold ends or re-attaches. */
  async #drain(s: Stream): Promise<void> {
    let failure: HerdClientError;
    try {
      while (!(await s.it.next()).done) this.#lastOk = Date.now();
      failure = new HerdClientError("hold stream ended by the server", Code.Unavailable);
    } catch (err) {
      failure = HerdClientError.from(err);
      if (TRANSIENT.has(failure.code)) {
        this.#lost(s, failure);
        return;
      }
    }
    // A stream this side closed (re-attach, release, caller) is not news.
    if (s === this.stream && !s.abort.signal.aborted) this.held.end(failure);
  }

  /** Stream `s` failed or its hold is gone: re-attach, unless a grace of 0 leaves no window. */
  #lost(s: Stream, cause: HerdClientError): void {
    if (s !== this.stream || this.held.signal.aborted || this.#reattaching) return;
    if (this.held.heartbeatGraceMs <= 0) {
      this.held.end(cause);
      return;
    }
    s.abort.abort(cause);
    this.#reattaching = true;
    void this.#reattach(cause).finally(() => {
      this.#reattaching = false;
    });
  }

  async #reattach(cause: HerdClientError): Promise<void> {
    const { held } = this;
    const graceMs = held.heartbeatGraceMs;
    let last = cause;
    let delay = BACKOFF_FIRST_MS;
    for (;;) {
      const left = this.#lastOk + graceMs - Date.now();
      if (left <= delay) {
        const msg = `hold lost: not re-attached within ${graceMs} ms (heartbeat_grace): ${last.message}`;
        return held.end(new HerdClientError(msg, last.code, { cause: last }));
      }
      await sleep(delay, held.signal);
      delay = Math.min(delay * 2, BACKOFF_MAX_MS);
      const attempt = AbortSignal.any([held.signal, AbortSignal.timeout(left)]);
      let s: Stream;
      try {
        s = await openStream(this.ch, held.id, attempt);
      } catch (err) {
        if (held.signal.aborted) return;
        last = HerdClientError.from(err);
        if (TRANSIENT.has(last.code) || attempt.aborted) continue;
        const msg = `hold lost: re-attaching to session ${held.id} failed: ${last.message}`;
        return held.end(new HerdClientError(msg, last.code, { cause: last }));
      }
      if (s.session.workerId !== held.workerId || s.session.token !== held.token) {
        // A daemon that ignores attach_only made a new session; closing its stream ends it.
        s.abort.abort();
        const msg = `hold lost: session ${held.id} came back on worker ${s.session.workerId}, not ${held.workerId}`;
        return held.end(new HerdClientError(msg, Code.FailedPrecondition));
      }
      this.stream = s;
      this.#lastOk = Date.now();
      held.reattached(s);
      void this.#drain(s);
      return;
    }
  }

  #schedule(): void {
    const every = Math.max(this.held.heartbeatGraceMs / 3, 10);
    this.#timer = setTimeout(() => void this.#renew(every), every);
    this.#timer.unref();
  }

  async #renew(every: number): Promise<void> {
    const { held } = this;
    const graceMs = held.heartbeatGraceMs;
    const s = this.stream;
    if (!this.#reattaching) {
      try {
        await this.ch.renew(
          held.id,
          s.holdId,
          Math.max(graceMs - (Date.now() - this.#lastOk), every),
        );
        if (s === this.stream) this.#lastOk = Date.now();
      } catch (err) {
        const e = HerdClientError.from(err);
        if (e.code === Code.NotFound) {
          // The hold is gone; whether its session is too, only re-attaching can tell.
          this.#lost(s, new HerdClientError(`hold refused by the daemon: ${e.message}`, e.code));
        } else if (s === this.stream && !this.#reattaching && Date.now() - this.#lastOk > graceMs) {
          const msg = `hold not renewed within ${graceMs} ms: ${e.message}`;
          held.end(new HerdClientError(msg, e.code, { cause: e }));
        }
      }
    }
    if (!held.signal.aborted) this.#schedule();
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}
