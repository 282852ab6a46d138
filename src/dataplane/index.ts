export { type DataPlane, type DataPlaneOptions, startDataPlane } from "./data-plane.ts";
export type { DataPlaneCounters } from "./data-plane-counters.ts";
export { parseRequestHead, parseResponseHead } from "./http1-head.ts";
