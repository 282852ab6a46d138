export { type DataPlane, type DataPlaneOptions, startDataPlane } from "./data-plane.ts";
export type { DataPlaneCounters } from "./proxy-context.ts";
