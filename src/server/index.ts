export {
  type ControlPlane,
  type ControlPlaneOptions,
  ListenError,
  startControlPlane,
} from "./control-plane.ts";
export { ControlPlaneMetrics } from "./metrics.ts";
