// WatchSessions in a cluster: one order for every node's events, the order of herd:events.
// A watcher's revision is the stream entry's revision, so any node serves a watch from any
// revision the stream still holds: the entries up to what this node has applied come from
// Redis (XRANGE), the rest from this node's reader as it applies them (fan-out only, no
// history kept here). A watcher that reconnects to another node resumes without loss or
// duplicates.
//
// Invariants: `applied` is the newest stream revision this node's reader has fanned out; a
// subscription takes the live feed and `applied` in one synchronous step, so the Redis part
// (since, applied] and the live part (applied, ...) meet exactly. Connection events never
// reach Redis: a watcher on their node sees them live, at the revision last applied, and they
// are not replayed on resume. Revisions the stream no longer holds (trimmed, or lost with
// Redis's data) are out_of_range, as on one node; a gap in what the reader reads cuts the
// live watchers off (unavailable) so none silently misses events.
//
// Concurrency: `apply` and `local` are called synchronously by the single reader and pump.

import type { EventSubscription, HerdEvent, SubscribeOptions } from "../core/index.ts";
import { HerdError } from "../core/index.ts";
import { EventLog, matchesFilter } from "../pool/index.ts";
import { decodeEvent } from "./event-wire.ts";
import type { RedisEvents } from "./redis-events.ts";
import type { RecordKeys } from "./signed-record.ts";

const PAGE = 512;

export class ClusterWatch {
  private log: EventLog;
  private applied = 0;

  constructor(
    private readonly store: Pick<RedisEvents, "range" | "lastRevision">,
    private readonly bufferLimit: number,
    private readonly keys: RecordKeys,
  ) {
    this.log = new EventLog(0, bufferLimit);
  }

  /** The newest revision applied: a snapshot taken now reflects exactly the events up to it. */
  revision(): number {
    return this.applied;
  }

  /** Where the reader starts (the stream's tail when this node joined). */
  startAt(revision: number): void {
    this.applied = revision;
  }

  /** The stream went back below `applied` (Redis lost its data): a new order from `revision`. */
  restart(revision: number, why: string): void {
    this.cutOff(why);
    this.log = new EventLog(0, this.bufferLimit);
    this.applied = revision;
  }

  /** The reader's entry, in stream order. A gap cuts the live watchers off first. */
  apply(event: HerdEvent): void {
    if (event.revision <= this.applied) return;
    if (event.revision !== this.applied + 1) {
      this.cutOff(
        `revisions ${this.applied + 1}-${event.revision - 1} of the cluster's event stream are gone (trimmed before this node read them, or lost with Redis's data)`,
      );
    }
    this.applied = event.revision;
    this.log.insert(event);
  }

  /** A node-local event (connection opened/closed): live only, at the revision last applied. */
  local(event: HerdEvent): void {
    this.log.insert({ ...event, revision: this.applied });
  }

  /** Every live watcher ends with `unavailable`; they watch again (with a snapshot). */
  cutOff(why: string): void {
    this.log.closeAll(
      new HerdError(
        "unavailable",
        `cluster watch interrupted: ${why}; watch again with a snapshot`,
      ),
    );
  }

  subscribe(opts: SubscribeOptions = {}): EventSubscription {
    const filter = opts.filter ?? {};
    const live = this.log.subscribe({
      filter: opts.filter,
      bufferLimit: opts.bufferLimit ?? this.bufferLimit,
    });
    const upTo = this.applied;
    const since = opts.sinceRevision ?? 0;
    const { store, keys } = this;
    return {
      close: () => live.close(),
      async *[Symbol.asyncIterator]() {
        try {
          if (since > 0 && since < upTo) {
            for (let next = since + 1; next <= upTo; ) {
              const page = await store.range(next - 1, upTo, PAGE);
              if (page[0]?.revision !== next) throw tooOld(since, page[0]?.revision);
              for (const entry of page) {
                if (entry.revision !== next) throw tooOld(since, entry.revision);
                next++;
                const decoded = decodeEvent(entry.revision, entry.json, keys);
                if (decoded && matchesFilter(filter, decoded.event)) yield decoded.event;
              }
            }
          } else if (since > upTo) {
            const latest = await store.lastRevision();
            if (since > latest) {
              throw new HerdError(
                "out_of_range",
                `since_revision ${since} is ahead of the cluster's latest revision ${latest}`,
              );
            }
          }
          for await (const event of live) {
            // Connection events are live-only: never replayed, so never seen twice.
            const liveOnly =
              event.type === "connection_opened" || event.type === "connection_closed";
            if (liveOnly || event.revision > since) yield event;
          }
        } finally {
          live.close();
        }
      },
    };
  }
}

function tooOld(since: number, oldest: number | undefined): HerdError {
  return new HerdError(
    "out_of_range",
    `since_revision ${since} is too old: the cluster's event stream ${oldest === undefined ? "no longer holds it" : `now starts at revision ${oldest}`}; start again with a snapshot`,
  );
}
