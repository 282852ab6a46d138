export { type DataPlane, type DataPlaneOptions, startDataPlane } from "./data-plane.ts";
export { parseRequestHead, parseResponseHead } from "./http1-head.ts";
export type { DataPlaneCounters } from "./proxy-context.ts";
export { PEER_HEADER } from "./route.ts";
