import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { resolvConf, workerResolvers } from "./resolvers.ts";

const dir = mkdtempSync(join(tmpdir(), "herd-resolvers-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
function file(name: string, text: string): string {
  writeFileSync(join(dir, name), text);
  return join(dir, name);
}

describe("workerResolvers", () => {
  it("gives workers the host's resolvers", () => {
    const conf = file("plain", "search x\nnameserver 10.255.255.53\nnameserver fd00::53\n");
    expect(workerResolvers(conf, join(dir, "none"))).toEqual({
      servers: ["10.255.255.53", "fd00::53"],
    });
  });
  it("replaces a loopback resolver (systemd-resolved's stub) by its upstream servers", () => {
    const conf = file("stub", "nameserver 127.0.0.53\noptions edns0\n");
    const upstream = file("upstream", "nameserver 192.0.2.53\nnameserver 127.0.0.1\n");
    const got = workerResolvers(conf, upstream);
    expect(got.servers).toEqual(["192.0.2.53"]);
    expect(got.note).toMatch(
      /127.0.0.53 is on loopback: workers use its upstream servers 192.0.2.53/,
    );
  });
  it("says so when a loopback resolver leaves workers without one", () => {
    const got = workerResolvers(file("only-lo", "nameserver 127.0.0.1\n"), join(dir, "none"));
    expect(got.servers).toEqual([]);
    expect(got.note).toMatch(/workers cannot resolve names/);
  });
  it("writes them as a resolv.conf", () => {
    expect(resolvConf(["192.0.2.53"])).toMatch(/^nameserver 192.0.2.53$/m);
  });
});
