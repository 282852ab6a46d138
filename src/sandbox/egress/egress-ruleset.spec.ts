// The generated ruleset is checked by the real nft (`nft -c`: parsed and validated by the
// kernel's netlink API without being applied) where nft runs as root; the order of the rules
// that carry the guarantees is checked on the text.
import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { DEFAULT_DENY, parseCidrs } from "./cidr.ts";
import {
  addWorker,
  poolRemoval,
  poolRuleset,
  removeWorker,
  tableRuleset,
} from "./egress-ruleset.ts";

const deny = parseCidrs([...DEFAULT_DENY, "198.51.100.0/24"]);
const allow = parseCidrs(["10.1.0.0/16", "fd12::/16"]);
if (typeof deny === "string" || typeof allow === "string") throw new Error("bad test ranges");
const pool = { index: 3, allow, deny, resolvers: ["10.255.255.53", "fd00::53"] };
const text = tableRuleset(4242, true) + poolRuleset(4242, pool) + addWorker(4242, 3, "herdeg17");
const hasNft = (() => {
  try {
    execFileSync("nft", ["--version"], { stdio: "ignore" });
    return process.getuid?.() === 0;
  } catch {
    return false;
  }
})();

describe("egress ruleset", () => {
  it.runIf(hasNft)("is valid nftables", () => {
    expect(() =>
      execFileSync("nft", ["-c", "-f", "-"], { input: text, stdio: ["pipe", "pipe", "pipe"] }),
    ).not.toThrow();
  });
  it.runIf(hasNft)("removes a pool's chain and sets again", () => {
    const batch = tableRuleset(4242, false) + poolRuleset(4242, pool) + poolRemoval(4242, 3);
    expect(() =>
      execFileSync("nft", ["-c", "-f", "-"], { input: batch, stdio: ["pipe", "pipe", "pipe"] }),
    ).not.toThrow();
  });
  it("refuses other workers and the host before any pool's allow list is consulted", () => {
    const forward = text.slice(text.indexOf("chain forward"), text.indexOf("chain input"));
    expect(forward.indexOf("ip daddr 10.250.0.0/16 reject")).toBeLessThan(
      forward.indexOf("vmap @pools"),
    );
    expect(forward).toMatch(/fib saddr \. iif oif missing drop/);
    expect(text).toMatch(/chain input \{[^}]*iifname @workers reject/);
  });
  it("lets resolvers through on port 53 only, then allow, then deny", () => {
    const chain = poolRuleset(4242, pool);
    const at = (s: string) => chain.indexOf(s);
    expect(at("th dport 53 ip daddr @p3_dns4 accept")).toBeLessThan(at("@p3_allow4 accept"));
    expect(at("@p3_allow4 accept")).toBeLessThan(at("@p3_deny4 reject"));
    expect(chain).toContain("198.51.100.0/24");
  });
  it("guards forwarding only when herd turned it on", () => {
    expect(tableRuleset(1, true)).toContain('iifname != "herdeg*" oifname != "herdeg*" drop');
    expect(tableRuleset(1, false)).not.toContain('oifname != "herdeg*"');
  });
  it("removes what it adds", () => {
    expect(removeWorker(4242, "herdeg17")).toContain(
      'delete element inet herd-egress-4242 pools { "herdeg17" }',
    );
  });
});
