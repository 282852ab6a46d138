// A fake outside world for the egress specs and bench: a network namespace of the test's own,
// reached from the host namespace through a veth pair, holding one address of each kind a
// sandboxed worker may or may not reach (the internet on 192.0.2.0/24, RFC 1918, CGNAT,
// link-local), each routed from the host as a /32 into that namespace and nowhere else, with an
// HTTP server on port 80 of every one and a DNS server on port 53 of `internet`.
//
// Invariant: every name (netns, veth) and address carries a random part, so concurrent runs on
// one host never collide; `close` (also after a failed start) deletes the namespace, which takes
// the veth pair and the host's routes with it, and the server process. No traffic goes
// anywhere else.

import { execFileSync, spawn } from "node:child_process";
import { randomBytes, randomInt } from "node:crypto";
import { connect } from "node:net";
import { fileURLToPath } from "node:url";
import { HERD_BIN } from "../helpers/index.ts";

const SERVER = fileURLToPath(new URL("./outside-server.mjs", import.meta.url));

export interface OutsideWorld {
  /** Public-looking addresses (192.0.2.0/24): `internet` also answers DNS for `name`. */
  internet: string;
  internet2: string;
  rfc1918: string;
  cgnat: string;
  linkLocal: string;
  /** Resolves to `internet` through the DNS server at `internet`. */
  name: string;
  netns: string;
  close(): void;
}

function ip(args: string[]): void {
  execFileSync("ip", args, { stdio: ["ignore", "ignore", "pipe"] });
}

const r = (lo: number, hi: number) => randomInt(lo, hi + 1);

export async function startOutsideWorld(): Promise<OutsideWorld> {
  const suffix = randomBytes(4).toString("hex");
  const netns = `herdow-${suffix}`;
  const veth = `how${suffix}`;
  let server: ReturnType<typeof spawn> | undefined;
  const close = () => {
    if (server?.pid) {
      try {
        process.kill(server.pid, "SIGKILL");
      } catch {}
    }
    try {
      ip(["netns", "delete", netns]);
    } catch {}
  };
  try {
    ip(["netns", "add", netns]);
    ip(["link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns]);
    ip(["link", "set", veth, "up"]);
    ip(["-n", netns, "link", "set", "lo", "up"]);
    ip(["-n", netns, "link", "set", "eth0", "up"]);
    // Replies go back to whatever host address sent them, all through the veth.
    ip(["-n", netns, "route", "add", "default", "dev", "eth0"]);
    const addresses = {
      internet: `192.0.2.${r(100, 250)}`,
      internet2: `192.0.2.${r(100, 250)}`,
      rfc1918: `172.16.${r(1, 254)}.${r(1, 254)}`,
      cgnat: `100.64.${r(1, 254)}.${r(1, 254)}`,
      linkLocal: `169.254.${r(1, 200)}.${r(1, 254)}`,
    };
    if (addresses.internet2 === addresses.internet) addresses.internet2 = `192.0.2.${r(10, 99)}`;
    for (const addr of Object.values(addresses)) {
      ip(["-n", netns, "addr", "add", `${addr}/32`, "dev", "eth0"]);
      // Fails (EEXIST) if another run holds this address: the caller's retry picks new ones.
      ip(["route", "add", `${addr}/32`, "dev", veth]);
    }
    const name = `outside-${suffix}.herd.test`;
    server = spawn(
      "ip",
      ["netns", "exec", netns, process.execPath, SERVER, name, addresses.internet],
      {
        stdio: ["ignore", "pipe", "inherit"],
      },
    );
    await new Promise<void>((resolve, reject) => {
      server!.once("exit", (code) => reject(new Error(`outside server exited (${code})`)));
      server!.stdout!.on("data", (d: Buffer) => {
        if (d.toString().includes("ready")) resolve();
      });
    });
    return { ...addresses, name, netns, close };
  } catch (err) {
    close();
    throw err;
  }
}

/** A TCP connect from this (the host's) namespace: the reference a refusal is shown against. */
export function reachableFromHost(addr: string, port = 80): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: addr, port, timeout: 10_000 });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
    socket.once("timeout", () => done(false));
  });
}

/**
 * The command that runs bin/herd with `resolvConf` as its /etc/resolv.conf (the outside world's
 * resolver), bound in a mount namespace of its own so the host's file stays untouched.
 */
export function herdWithResolvConf(resolvConf: string): string[] {
  return [
    "unshare",
    "--mount",
    "--propagation",
    "private",
    "/bin/sh",
    "-c",
    'mount --bind "$0" /etc/resolv.conf && exec "$@"',
    resolvConf,
    process.execPath,
    HERD_BIN,
  ];
}
