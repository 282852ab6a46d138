// The ordered lifecycle stream behind WatchSessions.
//
// Invariants: revisions start at 1 and increase by exactly 1 per appended event (`insert`, for
// events ordered elsewhere, only never goes backwards); a subscriber sees
// every matching event after its starting point exactly once, in revision order. The last
// `historyLimit` events are retained for resumption.
//
// Connection events (as many as the data plane's connections) visit only the subscribers that
// take them, so their cost does not grow with the watchers that asked not to see them.
//
// Concurrency: `append` is synchronous and never waits for a subscriber. Each subscriber owns a
// bounded queue; one that falls `bufferLimit` events behind is cut off (its iterator throws
// resource_exhausted) so a slow watcher can never hold the pool back or grow memory unbounded.

import type { EventFilter, EventSubscription, HerdEvent, SubscribeOptions } from "../core/index.ts";
import { HerdError } from "../core/index.ts";

export function isConnectionEvent(event: Pick<HerdEvent, "type">): boolean {
  return event.type === "connection_opened" || event.type === "connection_closed";
}

export function matchesFilter(
  { pool, sessionId, connectionEvents, tenant }: EventFilter,
  event: HerdEvent,
): boolean {
  return (
    (!pool || event.pool === pool) &&
    (!sessionId || event.sessionId === sessionId) &&
    (connectionEvents !== false || !isConnectionEvent(event)) &&
    // A tenant's view has only its own sessions' events (none of workers or queues).
    (tenant === undefined || event.session?.tenant === tenant)
  );
}

type Pending = { resolve: (r: IteratorResult<HerdEvent>) => void; reject: (e: unknown) => void };

class Subscriber implements EventSubscription {
  private readonly queue: HerdEvent[] = [];
  private pending: Pending | undefined;
  private failure: HerdError | undefined;
  private done = false;

  constructor(
    readonly filter: EventFilter,
    private readonly bufferLimit: number,
    private readonly detach: (s: Subscriber) => void,
  ) {}

  matches(event: HerdEvent): boolean {
    return matchesFilter(this.filter, event);
  }

  offer(event: HerdEvent): void {
    if (this.done) return;
    if (this.pending) {
      const { resolve } = this.pending;
      this.pending = undefined;
      resolve({ value: event, done: false });
      return;
    }
    if (this.queue.length >= this.bufferLimit) {
      this.fail(
        new HerdError(
          "resource_exhausted",
          `watcher fell more than ${this.bufferLimit} events behind and was cut off; resume from revision ${this.queue[0]?.revision ?? event.revision} - 1`,
        ),
      );
      return;
    }
    this.queue.push(event);
  }

  fail(error: HerdError): void {
    if (this.done) return;
    this.failure = error;
    this.queue.length = 0;
    this.finish();
  }

  close(): void {
    this.finish();
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    this.detach(this);
    const pending = this.pending;
    this.pending = undefined;
    if (pending) {
      if (this.failure) pending.reject(this.failure);
      else pending.resolve({ value: undefined, done: true });
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<HerdEvent> {
    return {
      next: () => {
        const event = this.queue.shift();
        if (event) return Promise.resolve({ value: event, done: false });
        if (this.failure) return Promise.reject(this.failure);
        if (this.done) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve, reject) => {
          this.pending = { resolve, reject };
        });
      },
      return: () => {
        this.close();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}

/** Caps on the configurable bounds: ~0.6 KiB of heap per retained event (bench/pool.ts). */
export const MAX_EVENT_HISTORY = 100_000;
export const MAX_WATCH_BUFFER = 65_536;

export class EventLog {
  private readonly history: HerdEvent[] = [];
  private readonly subscribers = new Set<Subscriber>();
  /** Those of `subscribers` that take connection events: only they are visited for one. */
  private readonly connectionSubscribers = new Set<Subscriber>();
  private last = 0;
  private sealed = false;

  /**
   * `historyLimit`: events retained for resumption. `bufferLimit`: how far a subscriber that
   * does not say may fall behind before it is cut off. Both bounded, so memory is too.
   */
  constructor(
    private readonly historyLimit = 10_000,
    private readonly bufferLimit = 1_024,
  ) {
    const check = (name: string, value: number, lowest: number, highest: number) => {
      if (!Number.isInteger(value) || value < lowest || value > highest) {
        throw new HerdError(
          "invalid_argument",
          `${name} must be an integer ${lowest}-${highest}, got ${value}`,
        );
      }
    };
    check("event history", historyLimit, 0, MAX_EVENT_HISTORY);
    check("watch buffer", bufferLimit, 1, MAX_WATCH_BUFFER);
  }

  revision(): number {
    return this.last;
  }

  /**
   * From now on events are dropped, not numbered (restart: a successor continues the sequence
   * from here, so an event numbered here would be a revision a watcher sees twice, or never).
   */
  seal(): void {
    this.sealed = true;
  }

  /** The successor never took the sequence over (restart failed): number events again. */
  unseal(): void {
    this.sealed = false;
  }

  append(event: Omit<HerdEvent, "revision" | "time">): HerdEvent {
    if (this.sealed) return { ...event, revision: this.last, time: new Date() };
    return this.insert({ ...event, revision: this.last + 1, time: new Date() });
  }

  /**
   * An event ordered elsewhere (a cluster's shared stream), with its own revision: never below
   * the latest, and possibly equal for events that are not resumable (node-local ones).
   */
  insert(full: HerdEvent): HerdEvent {
    if (full.revision < this.last) {
      throw new HerdError(
        "internal",
        `event revision ${full.revision} is behind the latest ${this.last}`,
      );
    }
    this.last = full.revision;
    this.history.push(full);
    if (this.history.length > this.historyLimit) this.history.shift();
    const audience = isConnectionEvent(full) ? this.connectionSubscribers : this.subscribers;
    for (const s of audience) if (s.matches(full)) s.offer(full);
    return full;
  }

  /** The retained events, oldest first (a restart hands them to the successor). */
  retained(): HerdEvent[] {
    return [...this.history];
  }

  /**
   * Continues a predecessor's sequence (restart): its retained events, its latest revision.
   * Only before the first event of this log.
   */
  continueFrom(events: readonly HerdEvent[], revision: number): void {
    if (this.last !== 0) {
      throw new HerdError("internal", "an event log continues a predecessor's only when empty");
    }
    this.history.push(...events.slice(-this.historyLimit || events.length));
    if (this.historyLimit === 0) this.history.length = 0;
    this.last = revision;
  }

  subscribe(opts: SubscribeOptions = {}): EventSubscription {
    const subscriber = new Subscriber(
      opts.filter ?? {},
      opts.bufferLimit ?? this.bufferLimit,
      (s) => {
        this.subscribers.delete(s);
        this.connectionSubscribers.delete(s);
      },
    );
    const since = opts.sinceRevision;
    if (since !== undefined && since >= 0) {
      if (since > this.last) {
        throw new HerdError(
          "out_of_range",
          `since_revision ${since} is ahead of the latest revision ${this.last}`,
        );
      }
      const oldest = this.history[0]?.revision ?? this.last + 1;
      if (since < oldest - 1) {
        throw new HerdError(
          "out_of_range",
          `since_revision ${since} is too old: the oldest retained revision is ${oldest}; start again with a snapshot`,
        );
      }
      for (const event of this.history) {
        if (event.revision > since && subscriber.matches(event)) subscriber.offer(event);
      }
    }
    this.subscribers.add(subscriber);
    if (subscriber.filter.connectionEvents !== false) this.connectionSubscribers.add(subscriber);
    return subscriber;
  }

  /** Ends every subscription cleanly (daemon shutdown). */
  closeAll(error?: HerdError): void {
    for (const s of [...this.subscribers]) {
      if (error) s.fail(error);
      else s.close();
    }
  }
}
