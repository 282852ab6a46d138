export {
  type ControlPlane,
  type ControlPlaneOptions,
  ListenError,
  startControlPlane,
} from "./control-plane.ts";
export type { NodeControl } from "./herd-service.ts";
export { ControlPlaneMetrics } from "./metrics.ts";
