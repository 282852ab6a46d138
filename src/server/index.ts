export {
  type ControlPlane,
  type ControlPlaneOptions,
  ListenError,
  startControlPlane,
} from "./control-plane.ts";
export type { PeerCalls } from "./interceptors.ts";
export { ControlPlaneMetrics } from "./metrics.ts";
