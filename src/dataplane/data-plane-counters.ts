// What the data plane counts, for its stats and the benches. Plain numbers, mutated on the event
// loop thread only. Its own file so that the upstream connections that count themselves need
// not import the ProxyContext that holds them (which was an import cycle).

export interface DataPlaneCounters {
  /** Requests and upgrades forwarded to a worker. */
  forwarded: number;
  /** New TCP connections to workers (a keep-alive reuse does not count). */
  upstreamConnections: number;
  /** Of `forwarded`, those the fast path forwarded (the rest went through node:http). */
  fastForwarded: number;
  /** Of the upgrades forwarded, the tunnels handed to the native relay (native-relay.ts). */
  nativeTunnels: number;
  /** Of `upstreamConnections`, those a contained worker's relay made inside its namespace. */
  dialed: number;
}

/** Every count at zero: a data plane's (or a spec's) to start from. */
export function zeroCounters(): DataPlaneCounters {
  return { forwarded: 0, upstreamConnections: 0, fastForwarded: 0, nativeTunnels: 0, dialed: 0 };
}
