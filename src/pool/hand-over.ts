// What one daemon hands its successor in a restart (src/cli/restart.ts carries it across the
// IPC channel, the sockets as handles): the event sequence so far, every lifeline of the
// generations whose workers are still alive, and each live session with its worker's tree and
// the output streams of that tree. Plain data but for the sockets and streams.

import type { HerdEvent } from "../core/index.ts";
import type { PoolHandOff } from "./pool.ts";
import type { Lifeline } from "./reaper.ts";

export interface HerdHandOff {
  /** The latest revision: the successor's next event is this + 1. */
  revision: number;
  /** The retained events, for watchers that resume with since_revision. */
  events: HerdEvent[];
  lifelines: Lifeline[];
  sessions: PoolHandOff[];
}
