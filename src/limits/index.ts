// Public surface of the limits room: what caps the planes put on connections and file
// descriptors, and how they close a connection they refuse. Shared by the data plane and the
// control plane; it knows neither.

export {
  type Admission,
  ConnectionGate,
  type ConnectionLimits,
  connectionLimits,
} from "./connection-gate.ts";
export { type FdBudget, fdBudget, softNofile } from "./fd-budget.ts";
export { lingeringClose } from "./lingering-close.ts";
