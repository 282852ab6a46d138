// Singleflight: concurrent acquires of one new session id share one flight, hence one worker.
// Each caller joins with its own deadline and its own signal, and gives up alone; the flight's
// own signal aborts only when the last caller has given up, so its queued acquire leaves the
// queue and no worker is bound to a session nobody waits for.
//
// Invariants: at most one flight per key; a flight is started at most once and leaves the map
// once it has settled (a microtask later: a caller arriving in between shares its outcome);
// `participants` counts the callers still waiting on it.
//
// Concurrency: single-threaded. `join` starts a new flight synchronously, in the caller's tick,
// so a second acquire of the id in the same tick finds it.

import { HerdError } from "../core/index.ts";
import { type LongTimer, setLongTimeout } from "./long-timer.ts";

interface Flight<T> {
  promise: Promise<T>;
  participants: number;
  abort: AbortController;
}

export interface Caller {
  /** How long this caller waits. */
  waitMs: number;
  /** This caller's cancellation. */
  signal?: AbortSignal | undefined;
  /** What this caller is rejected with when its wait runs out. */
  timedOut(): unknown;
}

export class Singleflight<T> {
  private readonly flights = new Map<string, Flight<T>>();

  has(key: string): boolean {
    return this.flights.has(key);
  }

  /**
   * Joins the flight for `key`, starting it with `start` when there is none. `start` gets the
   * signal that aborts when every caller has given up.
   */
  join(key: string, start: (signal: AbortSignal) => Promise<T>, caller: Caller): Promise<T> {
    let flight = this.flights.get(key);
    if (!flight) {
      const abort = new AbortController();
      const promise = start(abort.signal);
      flight = { promise, participants: 0, abort };
      promise.then(
        () => this.flights.delete(key),
        () => this.flights.delete(key),
      );
      this.flights.set(key, flight);
    }
    return this.wait(flight, caller);
  }

  /** One caller's view of a shared flight: its own deadline and signal, nobody else's. */
  private async wait(flight: Flight<T>, caller: Caller): Promise<T> {
    flight.participants++;
    let timer: LongTimer | undefined;
    let onAbort: (() => void) | undefined;
    const { signal } = caller;
    const own = new Promise<never>((_, reject) => {
      // A caller's wait may exceed what setTimeout can hold (an RPC asking for years).
      timer = setLongTimeout(() => reject(caller.timedOut()), caller.waitMs);
      if (signal) {
        onAbort = () => reject(new HerdError("cancelled", "acquire cancelled by the caller"));
        if (signal.aborted) onAbort();
        else signal.addEventListener("abort", onAbort, { once: true });
      }
    });
    try {
      return await Promise.race([flight.promise, own]);
    } catch (err) {
      if (--flight.participants === 0) flight.abort.abort(err);
      throw err;
    } finally {
      timer?.clear();
      if (onAbort) signal?.removeEventListener("abort", onAbort);
    }
  }
}
