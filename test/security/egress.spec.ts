// `network: egress` (issue 18): a worker reaches the outside world, by address and by name,
// and nothing else: not the host (any address), not the planes, not another worker, not
// link-local, RFC 1918 or CGNAT; not even after root in its namespace rewrites routes and
// flushes that namespace's firewall. The outside world is test/egress/outside-world.ts's: a
// namespace of this test's own, routed /32 by /32; each refusal is shown against the same target
// reached from the host's namespace. The daemon runs in a mount namespace whose
// /etc/resolv.conf names the outside world's DNS server (what a host's resolver is to herd), on
// its RFC 1918 address, as a cloud VPC's resolver is: workers reach it on port 53 and only there.

import { execFileSync, spawn } from "node:child_process";
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { networkInterfaces } from "node:os";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { reaperOf, slotsOf } from "../egress/egress-state.ts";
import {
  herdWithResolvConf,
  type OutsideWorld,
  reachableFromHost,
  startOutsideWorld,
} from "../egress/outside-world.ts";
import {
  type Daemon,
  expectNoLeaks,
  killAllWithTag,
  newLeakTag,
  startDaemon,
} from "../helpers/index.ts";
import {
  type Answer,
  ask,
  expectNoIsolationLeaks,
  hostilePool,
  type UidRange,
  uidRangeKey,
} from "./isolation-harness.ts";

const leak = newLeakTag();
const UID_RANGE: UidRange = [231_000, 231_999];
const resolvFile = `/tmp/herd-egress-resolv-${leak.tag}`;
let world: OutsideWorld;
let daemon: Daemon;
let hostListener: Server;
let hostPort: number;

const egress = (extra: Record<string, unknown> = {}) => ({
  user: "auto",
  uid_range: uidRangeKey(UID_RANGE),
  network: "egress",
  filesystem: "private",
  ...extra,
});

beforeAll(async () => {
  world = await startOutsideWorld();
  writeFileSync(resolvFile, `nameserver ${world.rfc1918}\n`);
  hostListener = createServer((s) => {
    s.on("error", () => {});
    s.end("host\n");
  });
  await new Promise<void>((r) => hostListener.listen(0, "0.0.0.0", r));
  hostPort = (hostListener.address() as { port: number }).port;
  daemon = await startDaemon({
    command: herdWithResolvConf(resolvFile),
    config: {
      workers: {
        eg: hostilePool(leak.env, egress()),
        // Says nothing about `network`: gets egress, the default where the host supports it.
        dflt: hostilePool(leak.env, { user: "auto", uid_range: uidRangeKey(UID_RANGE) }),
        tuned: hostilePool(
          leak.env,
          egress({ egress: { allow: [`${world.rfc1918}/32`], deny: [world.internet2] } }),
        ),
      },
    },
    env: leak.env,
  });
}, 90_000);

afterAll(async () => {
  hostListener?.close();
  const pid = daemon?.pid ?? 0;
  const reaper = reaperOf(pid) ?? pid;
  const exit = await daemon?.stop();
  try {
    await expectNoLeaks(leak.tag);
    await expectNoIsolationLeaks(UID_RANGE, pid);
    // Its table and its workers' namespaces (claimed under /run/herd-egress, in the name of
    // its generation's reaper) went with it.
    expect(execFileSync("nft", ["list", "tables"]).toString()).not.toContain(`herd-egress-${pid}`);
    expect(slotsOf([pid, reaper])).toEqual([]);
  } finally {
    killAllWithTag(leak.tag);
    world?.close();
    rmSync(resolvFile, { force: true });
  }
  expect(exit).toEqual({ code: 0, signal: null });
}, 60_000);

const connect = (pool: string, session: string, host: string, port = 80): Promise<Answer> =>
  ask(daemon, pool, session, `/connect?host=${encodeURIComponent(host)}&port=${port}`);

/** The host's own addresses (eth0 and the like; IPv6: global ones), not workers' veth ends. */
function hostAddresses(family: 4 | 6 = 4): string[] {
  return Object.values(networkInterfaces())
    .flat()
    .filter((a) => a?.family === `IPv${family}` && !a.internal)
    .map((a) => a!.address)
    .filter((a) => !a.startsWith("10.250.") && !a.startsWith("fe80:"));
}

describe("network: egress", () => {
  it("reaches the outside world by address and by name (the resolver in its resolv.conf)", async () => {
    expect(await connect("eg", "out", world.internet)).toEqual({ ok: true });
    expect(await connect("eg", "out", world.name)).toEqual({ ok: true });
    const read = await ask(daemon, "eg", "out", "/read?path=/etc/resolv.conf");
    expect(read.content).toContain(`nameserver ${world.rfc1918}`);
    // The resolver's address is open on port 53 only.
    expect(await connect("eg", "out", world.rfc1918, 53)).toEqual({
      ok: false,
      error: "ECONNREFUSED",
    });
    expect((await connect("eg", "out", world.rfc1918, 80)).ok).toBe(false);
  });

  it("is what a pool that says nothing about network gets, and the start log says so", async () => {
    expect(await connect("dflt", "d", world.name)).toEqual({ ok: true });
    expect((await connect("dflt", "d", world.rfc1918)).ok).toBe(false);
    expect((await connect("dflt", "d", "169.254.169.254")).ok).toBe(false);
    expect(daemon.stdout() + daemon.stderr()).toMatch(
      /pool dflt containment: .*network: egress \(own namespace, out to the internet only/,
    );
  });

  it("never reaches the host: not its addresses, its gateway, nor its loopback", async () => {
    const me = await ask(daemon, "eg", "host-attacker", "/id");
    const [own] = me.addresses as string[];
    const gateway = own!.replace(/\d+$/, (d) => String(Number(d) - 1));
    for (const addr of [gateway, ...hostAddresses()]) {
      expect(await reachableFromHost(addr, hostPort), `${addr} from the host`).toBe(true);
      const tried = await connect("eg", "host-attacker", addr, hostPort);
      expect(tried.ok, `${addr}:${hostPort} from the worker`).toBe(false);
      const plane = await connect(
        "eg",
        "host-attacker",
        addr,
        Number(new URL(daemon.dataUrl).port),
      );
      expect(plane.ok, `the data plane on ${addr}`).toBe(false);
    }
    // Its 127.0.0.1 is its own: the host's listener and the planes are not there.
    expect((await connect("eg", "host-attacker", "127.0.0.1", hostPort)).ok).toBe(false);
    expect(
      (await connect("eg", "host-attacker", "127.0.0.1", Number(new URL(daemon.controlUrl).port)))
        .ok,
    ).toBe(false);
  });

  it("never reaches link-local (cloud metadata), RFC 1918 or CGNAT ranges", async () => {
    for (const addr of [world.linkLocal, world.rfc1918, world.cgnat]) {
      expect(await reachableFromHost(addr), `${addr} from the host`).toBe(true);
      expect(await connect("eg", "range-attacker", addr), `${addr} from the worker`).toMatchObject({
        ok: false,
      });
    }
    expect((await connect("eg", "range-attacker", "169.254.169.254")).ok).toBe(false);
  });

  it("never reaches another worker", async () => {
    const victim = await ask(daemon, "eg", "victim", "/id");
    const [addr] = victim.addresses as string[];
    // The worker listens on its loopback (the relay's side): a listener on all of its
    // addresses, in its namespace, is what a neighbour would aim at.
    const listener = spawn(
      "nsenter",
      [
        `--target=${hostPid(victim.uid as number)}`,
        "--net",
        "--",
        process.execPath,
        "-e",
        'require("net").createServer((s)=>{s.on("error",()=>{});s.end("victim")}).listen(9999,"0.0.0.0",()=>console.log("up"))',
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    try {
      await new Promise((r) => listener.stdout.once("data", r));
      expect(await reachableFromHost(addr!, 9999), "the victim from the host").toBe(true);
      expect((await connect("eg", "neighbour", addr!, 9999)).ok).toBe(false);
    } finally {
      listener.kill("SIGKILL");
    }
  });

  it("allow punches a hole in the deny list; deny adds a range", async () => {
    expect(await connect("tuned", "t", world.rfc1918)).toEqual({ ok: true });
    expect((await connect("tuned", "t", world.cgnat)).ok).toBe(false);
    expect((await connect("tuned", "t", world.internet2)).ok).toBe(false);
    expect(await connect("tuned", "t", world.internet)).toEqual({ ok: true });
    expect(await connect("eg", "untuned", world.internet2)).toEqual({ ok: true });
  });

  it("root with CAP_NET_ADMIN in the worker's namespace cannot undo the filter", async () => {
    const me = await ask(daemon, "eg", "netadmin", "/id");
    const pid = hostPid(me.uid as number);
    const [own] = me.addresses as string[];
    const gateway = own!.replace(/\d+$/, (d) => String(Number(d) - 1));
    const inWorkerNet = (...argv: string[]) =>
      execFileSync("nsenter", [`--target=${pid}`, "--net", "--", ...argv], {
        stdio: ["ignore", "pipe", "pipe"],
      }).toString();
    // Whatever firewall the namespace has goes; a route straight at the blocked ranges.
    inWorkerNet("nft", "flush", "ruleset");
    for (const addr of [world.rfc1918, world.cgnat, world.linkLocal]) {
      inWorkerNet("ip", "route", "replace", `${addr}/32`, "via", gateway, "dev", "eth0");
    }
    // ... and another source address (a neighbour's, say).
    inWorkerNet("ip", "addr", "add", "10.250.255.254/32", "dev", "eth0");
    // ... and IPv6 towards the host: a default route via the host end's link-local address.
    const hostIndex = /eth0@if(\d+)/.exec(inWorkerNet("ip", "-o", "link", "show", "eth0"))![1];
    const hostEnd = new RegExp(`^${hostIndex}: (\\S+)\\s+inet6 (fe80::[0-9a-f:]+)/`, "m").exec(
      execFileSync("ip", ["-o", "-6", "addr", "show", "scope", "link"]).toString(),
    )!;
    const [, hostIf, hostLinkLocal] = hostEnd;
    inWorkerNet("ip", "-6", "route", "replace", "default", "via", hostLinkLocal!, "dev", "eth0");
    const listener6 = createServer((c) => {
      c.on("error", () => {});
      c.end("host\n");
    });
    await new Promise<void>((r) => listener6.listen({ port: 0, host: "::", ipv6Only: true }, r));
    const port6 = (listener6.address() as { port: number }).port;
    const probe = (addr: string, port: number, from?: string) =>
      inWorkerNet(
        process.execPath,
        "-e",
        `const s=require("net").connect({host:${JSON.stringify(addr)},port:${port},timeout:5000${from ? `,localAddress:${JSON.stringify(from)}` : ""}});` +
          `s.on("connect",()=>{console.log("open");process.exit(0)});s.on("error",e=>{console.log(e.code);process.exit(0)});s.on("timeout",()=>{console.log("timeout");process.exit(0)})`,
      ).trim();
    try {
      expect(probe(world.internet, 80)).toBe("open");
      for (const addr of [world.rfc1918, world.cgnat, world.linkLocal]) {
        expect(probe(addr, 80), addr).not.toBe("open");
      }
      expect(await reachableFromHost(gateway, hostPort)).toBe(true);
      expect(probe(gateway, hostPort)).not.toBe("open");
      expect(probe(world.internet, 80, "10.250.255.254")).not.toBe("open");
      // (The host's input chain refuses all a worker sends it, neighbour discovery included.)
      const v6 = [`${hostLinkLocal}%${hostIf}`, ...hostAddresses(6)];
      for (const [i, addr] of v6.entries()) {
        expect(await reachableFromHost(addr, port6), `[${addr}] from the host`).toBe(true);
        const inside = i === 0 ? `${hostLinkLocal}%eth0` : addr;
        expect(probe(inside, port6), `[${inside}] from the worker`).not.toBe("open");
      }
    } finally {
      listener6.close();
    }
  });
});

/** The host pid of the hostile worker running as `uid` (it sees only its own PID namespace). */
function hostPid(uid: number): number {
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const status = readFileSync(`/proc/${name}/status`, "utf8");
      const cmdline = readFileSync(`/proc/${name}/cmdline`, "utf8");
      if (
        Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]) === uid &&
        cmdline.includes("hostile-worker")
      ) {
        return Number(name);
      }
    } catch {}
  }
  throw new Error(`no hostile worker runs as uid ${uid}`);
}

/** The worker-network slots daemon `pid` still claims (egress/worker-net.ts). */
