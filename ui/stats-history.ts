// Recent per-pool samples of sessions and queue depth for the plots, from the GetStats polls.
// Invariant: per key, samples are in time order and none is older than `windowMs` behind the
// newest. Keys are "node/pool", so rows of several nodes (cluster mode) can share one history.

export interface Sample {
  /** ms since the epoch */
  t: number;
  sessions: number;
  queued: number;
}

export class StatsHistory {
  private readonly series = new Map<string, Sample[]>();

  constructor(readonly windowMs = 5 * 60_000) {}

  add(key: string, sample: Sample): void {
    let s = this.series.get(key);
    if (!s) {
      s = [];
      this.series.set(key, s);
    }
    s.push(sample);
    const oldest = sample.t - this.windowMs;
    while (s.length > 0 && s[0]!.t < oldest) s.shift();
  }

  get(key: string): readonly Sample[] {
    return this.series.get(key) ?? [];
  }
}
