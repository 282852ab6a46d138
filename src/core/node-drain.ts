// Whether this node takes new sessions. A drain (`herd drain`, SIGTERM) is one-way: the node
// serves the sessions it has until they end or its deadline passes, and then stops — it never
// goes back to serving (a restarted daemon is a new node life).
//
// Invariant: state moves serving → draining once; `begun` aborts at that moment, so everything
// that must react (the cluster record, the shutdown sequence) hears of it exactly once.
// Concurrency: single-threaded; begin() is idempotent.

export type DrainState =
  | { kind: "serving" }
  | {
      kind: "draining";
      since: number /** epoch ms: the node stops by then at the latest */;
      deadline: number;
    };

export class NodeDrain {
  #state: DrainState = { kind: "serving" };
  readonly #begun = new AbortController();

  /** `timeoutMs`: drain_timeout, how long live sessions may run on once the drain begins. */
  constructor(readonly timeoutMs: number) {}

  get state(): DrainState {
    return this.#state;
  }

  get draining(): boolean {
    return this.#state.kind === "draining";
  }

  /** Aborts when the drain begins. */
  get begun(): AbortSignal {
    return this.#begun.signal;
  }

  /** Starts the drain; false when it was already under way. */
  begin(): boolean {
    if (this.#state.kind === "draining") return false;
    const now = Date.now();
    this.#state = { kind: "draining", since: now, deadline: now + this.timeoutMs };
    this.#begun.abort();
    return true;
  }
}
