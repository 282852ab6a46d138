// `herd config check FILE`: the same loading `herd serve` does, without starting anything.
// Exit 0 when it would start (warnings go to stderr), 2 when it would not (bad config, as
// `herd serve` exits). `--json` prints one object either way:
// {"file","valid":true,"warnings":[issue]} or {"file","valid":false,"problems":[issue]},
// an issue being {file,line,col,path,message} (a file that cannot be read: {file,message}).

import {
  ConfigError,
  type ConfigIssue,
  formatWarning,
  type HerdConfig,
  loadConfig,
} from "../config/index.ts";
import { humanDuration } from "./table.ts";

export function configCheck(
  file: string,
  opts: { json: boolean },
  out: (text: string) => void,
  fail: (text: string) => void,
): number {
  const warnings: ConfigIssue[] = [];
  let c: HerdConfig;
  try {
    c = loadConfig(file, { onWarning: (w) => warnings.push(w) });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    if (opts.json) {
      const problems = err.issues.length > 0 ? err.issues : [{ file, message: err.message }];
      out(JSON.stringify({ file, valid: false, problems }));
    } else {
      fail(err.message);
    }
    return 2;
  }
  if (opts.json) {
    out(JSON.stringify({ file, valid: true, warnings }));
    return 0;
  }
  for (const w of warnings) fail(formatWarning(w));
  out(`${file}: OK`);
  for (const p of c.pools) {
    const ttl = p.idleTtlMs > 0 ? `ttl ${humanDuration(p.idleTtlMs)}` : "no idle ttl";
    out(
      `  pool ${p.name}${p.name === c.defaultPool ? " (default)" : ""}: ${p.min}-${p.max} workers, ${ttl}, ${p.reuse ? "reuse" : "no reuse"}, ready ${p.ready.kind}: ${JSON.stringify(p.command)}`,
    );
  }
  out(
    `  control ${c.control.listen}${c.control.socket ? ` + ${c.control.socket}` : ""}${c.control.token ? " (token)" : ""}`,
  );
  out(
    `  data    ${c.data.listen}, header ${c.data.sessionHeader}, auto_acquire ${c.data.autoAcquire}, tokens ${c.data.tokensRequired ? "required" : "off"}`,
  );
  if (c.cluster) {
    const { node, advertise, leaseMs, redisUrl } = c.cluster;
    const redis = redisUrl.replace(/\/\/[^@/]*@/, "//");
    out(
      `  cluster node ${node}, Redis ${redis}, lease ${humanDuration(leaseMs)}, advertise data ${advertise.data} control ${advertise.control}`,
    );
  }
  return 0;
}
