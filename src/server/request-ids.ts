// AcquireSessionRequest.request_id: a retried acquire (same caller, same request_id) gets the
// session the first one made, for as long as that session lives. The first acquire fixes the
// session's id up front, so a retry is an acquire of that id — the pool's own idempotency and
// singleflight then give it the same worker, whether the first is still waiting or done.
//
// Invariant: an entry names a session that is live or whose acquire is in flight; entries of
// ended sessions are swept whenever the map has grown past twice what the last sweep left
// (plus a floor), so memory stays proportional to the live sessions made with a request_id.
// Concurrency: single-threaded; take() and settle() bracket one acquire.

import { HerdError, newSessionId } from "../core/index.ts";

const MAX_REQUEST_ID = 128;
const SWEEP_FLOOR = 256;

interface Entry {
  sessionId: string;
  inFlight: number;
}

/** The request_id as given, or a HerdError saying what is wrong with it. */
export function validateRequestId(id: string): string {
  if (id.length > MAX_REQUEST_ID || !/^[\x20-\x7e]*$/.test(id)) {
    throw new HerdError(
      "invalid_argument",
      `request_id: at most ${MAX_REQUEST_ID} printable ASCII characters, got ${id.length > MAX_REQUEST_ID ? `${id.length} characters` : "other characters"}`,
    );
  }
  return id;
}

export class RequestIds {
  readonly #entries = new Map<string, Entry>();
  #sweepAt = SWEEP_FLOOR;

  /** @param live whether a session id is live now */
  constructor(private readonly live: (sessionId: string) => boolean) {}

  get size(): number {
    return this.#entries.size;
  }

  /**
   * The session id an acquire by `caller` with `requestId` must use: the one an earlier
   * acquire with them fixed while its session lives, else `given` or a fresh one. Call
   * `settle` with the result once the acquire is over.
   */
  take(caller: string, requestId: string, given: string | undefined): Entry {
    const key = `${caller}\n${requestId}`;
    let entry = this.#entries.get(key);
    if (entry !== undefined && entry.inFlight === 0 && !this.live(entry.sessionId)) {
      this.#entries.delete(key);
      entry = undefined;
    }
    if (entry !== undefined && given !== undefined && given !== entry.sessionId) {
      throw new HerdError(
        "invalid_argument",
        `request_id ${JSON.stringify(requestId)} was already used for session ${JSON.stringify(entry.sessionId)}, not ${JSON.stringify(given)}`,
      );
    }
    if (entry === undefined) {
      entry = { sessionId: given ?? newSessionId(), inFlight: 0 };
      this.#entries.set(key, entry);
      if (this.#entries.size > this.#sweepAt) this.#sweep();
    }
    entry.inFlight++;
    return entry;
  }

  /** The acquire that took `entry` is over; a failed one leaves no entry behind. */
  settle(caller: string, requestId: string, entry: Entry): void {
    entry.inFlight--;
    const key = `${caller}\n${requestId}`;
    if (entry.inFlight === 0 && this.#entries.get(key) === entry && !this.live(entry.sessionId)) {
      this.#entries.delete(key);
    }
  }

  #sweep(): void {
    for (const [key, entry] of this.#entries) {
      if (entry.inFlight === 0 && !this.live(entry.sessionId)) this.#entries.delete(key);
    }
    this.#sweepAt = Math.max(SWEEP_FLOOR, 2 * this.#entries.size);
  }
}
