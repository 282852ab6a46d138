export { parseByteSize } from "./byte-size.ts";
export { didYouMean } from "./did-you-mean.ts";
export { parseDuration } from "./duration.ts";
export type { ClusterConfig, HerdConfig, LogLevel, TokenMode } from "./herd-config.ts";
export type { ConfigIssue, LoadOptions } from "./load-config.ts";
export {
  ConfigError,
  formatIssue,
  formatWarning,
  loadConfig,
  parseConfig,
} from "./load-config.ts";
export { configSchema, poolSchema } from "./schema.ts";
export { tenantSchema } from "./tenants-config.ts";
