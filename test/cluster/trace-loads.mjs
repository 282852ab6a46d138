// Preloaded into a daemon (NODE_OPTIONS=--import) by lazy-load.spec.ts: appends the URL of
// every module the daemon resolves to the file named by HERD_TRACE_LOADS.
import { register } from "node:module";

register(
  `data:text/javascript,${encodeURIComponent(`
import { appendFileSync } from "node:fs";
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  appendFileSync(process.env.HERD_TRACE_LOADS, r.url + "\\n");
  return r;
}`)}`,
);
