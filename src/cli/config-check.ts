// `herd config check FILE`: the same loading `herd serve` does, without starting anything.

import { ConfigError, loadConfig } from "../config/index.ts";
import { humanDuration } from "./table.ts";

export function configCheck(
  file: string,
  out: (text: string) => void,
  fail: (text: string) => void,
): number {
  try {
    const c = loadConfig(file);
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
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    fail(err.message);
    return 1;
  }
}
