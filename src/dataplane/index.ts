export { type DataPlane, type DataPlaneOptions, startDataPlane } from "./data-plane.ts";
export type { DataPlaneCounters } from "./data-plane-counters.ts";
export { parseRequestHead } from "./http1/request-head.ts";
export { parseResponseHead } from "./http1/response-head.ts";
export { NativeRelay } from "./native-relay.ts";
