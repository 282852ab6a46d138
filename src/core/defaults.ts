// The defaults of settings that more than one room applies: src/config fills them in for
// herd.yaml, and each plane for a caller that names no value (tests, benches, embedders). One
// place, so the two can never disagree.

export const CONFIG_DEFAULTS = {
  controlListen: "127.0.0.1:7070",
  dataListen: "127.0.0.1:8080",
  sessionHeader: "X-Session-ID",
  controlHeaderTimeoutMs: 10_000,
  controlIdleTimeoutMs: 30_000,
  /** HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS on the control plane (issue 20). */
  controlMaxStreamsPerConnection: 100,
  /** Open WatchSessions streams of one caller (issue 20). */
  controlMaxWatchersPerCaller: 256,
  /** Open HoldSession streams of one caller (issue 20). */
  controlMaxHoldsPerCaller: 4096,
  bodyTimeoutMs: 20_000,
  bodyMinRate: 500,
  clusterLeaseMs: 5_000,
  drainTimeoutMs: 30_000,
} as const;
