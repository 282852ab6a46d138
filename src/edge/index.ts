// Checks at the edge of both planes against web pages driving herd from a browser: which Host a
// plane answers (DNS rebinding) and whether a request comes from a page of another origin.

export {
  AllowedHosts,
  hostOf,
  hostPatternError,
  misdirected,
  sessionHostError,
} from "./allowed-hosts.ts";
export { type BrowserHeaders, fromOtherOrigin } from "./browser-origin.ts";
