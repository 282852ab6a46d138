// The caps on what one caller may hold open on the control plane: WatchSessions and
// HoldSession streams (issue 20). Each stream holds daemon memory for as long as its client
// wants (a watch ~100 KB, a hold ~80 KB with its HTTP/2 stream), so one client must not be
// able to open them without bound; past its cap a call fails RESOURCE_EXHAUSTED naming the
// limit, and the caller's other streams go on.
//
// Invariant: `open` counts exactly the streams taken and not yet given back, per caller and
// kind; a caller with none has no entry. Single-threaded: `take` checks and counts in one
// step, and its release is idempotent, so a stream ending twice gives back one slot.

import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import type { HerdService } from "../../gen/herd/v1/herd_pb.ts";
import { HerdError } from "../core/index.ts";
import { callerOf } from "./caller.ts";

export type StreamKind = "watchers" | "holds";

/** The most streams of each kind one caller may have open; 0: no cap. */
export type CallerCaps = Record<StreamKind, number>;

const SETTING: Record<StreamKind, string> = {
  watchers: "control.max_watchers_per_caller",
  holds: "control.max_holds_per_caller",
};
const RPC: Record<StreamKind, string> = { watchers: "WatchSessions", holds: "HoldSession" };

export class CallerLimits {
  private readonly open: Record<StreamKind, Map<string, number>> = {
    watchers: new Map(),
    holds: new Map(),
  };

  constructor(private readonly caps: CallerCaps) {}

  /** Counts a stream of `caller` (undefined: uncounted) or throws; call the result when it ends. */
  take(kind: StreamKind, caller: string | undefined): () => void {
    if (caller === undefined) return () => {};
    const counts = this.open[kind];
    const now = counts.get(caller) ?? 0;
    const cap = this.caps[kind];
    if (cap > 0 && now >= cap) {
      throw new HerdError(
        "resource_exhausted",
        `${caller} has ${now} ${RPC[kind]} streams open, the most ${SETTING[kind]} (${cap}) allows: end one first`,
      );
    }
    counts.set(caller, now + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (counts.get(caller) ?? 1) - 1;
      if (left > 0) counts.set(caller, left);
      else counts.delete(caller);
    };
  }

  /** Streams of this kind open now, all callers together. */
  count(kind: StreamKind): number {
    let total = 0;
    for (const n of this.open[kind].values()) total += n;
    return total;
  }
}

type Service = ServiceImpl<typeof HerdService>;

/**
 * The service with its HoldSession and WatchSessions streams counted against their caller:
 * the slot is taken as the call starts (a hold's before its acquire, so a caller over its cap
 * gets no new session either) and given back however the stream ends.
 */
export function countedStreams(service: Service, limits: CallerLimits): Service {
  const counted = <I, O>(
    kind: StreamKind,
    stream: (req: I, ctx: HandlerContext) => AsyncIterable<O>,
  ): ((req: I, ctx: HandlerContext) => AsyncIterable<O>) =>
    async function* (req, ctx) {
      const release = limits.take(kind, callerOf(ctx));
      try {
        yield* stream(req, ctx);
      } finally {
        release();
      }
    };
  return {
    ...service,
    holdSession: counted("holds", service.holdSession),
    watchSessions: counted("watchers", service.watchSessions),
  };
}
