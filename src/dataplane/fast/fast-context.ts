// What the fast path uses beyond the shared ProxyContext: the park of idle upstream connections
// that outlive their client connection (upstream-park.ts). Built once by startDataPlane.

import type { ProxyContext } from "../proxy-context.ts";
import type { UpstreamPark } from "./upstream-park.ts";

export interface FastContext extends ProxyContext {
  /** Idle upstream connections to workers, kept between client connections. */
  park: UpstreamPark;
}
