import { describe, expect, it } from "vitest";
import { relayDialSocket, workerEndpoint } from "../core/index.ts";
import { bwrapArgv, codeUnderTmp, relaySocket } from "./bwrap-argv.ts";

const TOOLS = {
  bwrap: "/usr/bin/bwrap",
  relay: { kind: "native", path: "/opt/herd/.tools/native/tunnel-relay" } as const,
  setpriv: "/usr/bin/setpriv",
  nsenter: "/usr/bin/nsenter",
};
const BOX = {
  dir: "/run/herd-sandbox/a/1/2",
  root: "/run/herd-sandbox",
  port: 4000,
  dieWithParent: true,
  network: true,
  filesystem: true,
  hide: ["/etc/herd/herd.yaml"],
  keep: [],
  tmpfsBytes: 1 << 30,
  runLock: true,
  seccomp: "/run/herd-sandbox/a/1/seccomp.bpf",
};

describe("bwrapArgv", () => {
  it("ties the sandbox to the daemon only when no lifeline (restart) ends it", () => {
    expect(bwrapArgv(BOX, TOOLS)).toContain("--die-with-parent");
    expect(bwrapArgv({ ...BOX, dieWithParent: false }, TOOLS)).not.toContain("--die-with-parent");
  });

  it("hides other workers and the config, relays, gates, then drops to the worker's uid", () => {
    const argv = bwrapArgv({ ...BOX, uid: 200001, gid: 200001 }, TOOLS);
    const joined = argv.join(" ");
    expect(joined).toContain("--unshare-pid --unshare-ipc --unshare-uts --unshare-net");
    expect(joined).toContain(
      "--tmpfs /run/herd-sandbox --perms 0711 --dir /run/herd-sandbox/a/1 --bind /run/herd-sandbox/a/1/2 /run/herd-sandbox/a/1/2",
    );
    for (const dir of ["/tmp", "/var/tmp", "/dev/shm"]) {
      expect(joined).toContain(`--perms 1777 --size ${1 << 30} --tmpfs ${dir}`);
    }
    expect(joined).toContain(`--size ${1 << 20} --tmpfs /run/lock`);
    // The filter reaches bwrap on fd 9, opened by the shell that exec's it.
    expect(argv.slice(0, 5)).toEqual([
      "/bin/sh",
      "-c",
      'exec "$@" 9<"$0"',
      BOX.seccomp,
      TOOLS.bwrap,
    ]);
    expect(joined).toContain("--seccomp 9");
    expect(joined).toContain("--ro-bind /dev/null /etc/herd/herd.yaml");
    const script = argv.at(-2)!;
    // The relay starts before the gate; the uid switch and the command come after it.
    expect(script.indexOf("--listen")).toBeLessThan(script.indexOf("read -r _"));
    expect(script.indexOf("read -r _")).toBeLessThan(script.indexOf("--reuid 200001"));
    // herd's relay is bound into the worker's root-only relay directory, read-only, and run there.
    const inside = `${BOX.dir}/relay/tunnel-relay`;
    expect(joined).toContain(`--ro-bind ${TOOLS.relay.path} ${inside}`);
    // ...and also listens for dials, beside its relay socket (core's relayDialSocket).
    const dial = relayDialSocket(workerEndpoint(`unix:${relaySocket(BOX.dir)}`));
    expect(dial).toBe(`${BOX.dir}/relay/dial.sock`);
    expect(script).toContain(
      `'${inside}' --listen '${relaySocket(BOX.dir)}' 4000 '${dial}' </dev/null & `,
    );
    expect(script).toContain("--no-new-privs --bounding-set -all --inh-caps -all");
    expect(argv.at(-1)).toBe("herd-sandbox");
  });

  it("relays with socat, forking per connection, where herd's native relay was not built", () => {
    const argv = bwrapArgv(
      { ...BOX, uid: 200001 },
      {
        ...TOOLS,
        relay: { kind: "socat", path: "/usr/bin/socat" },
      },
    );
    const script = argv.at(-2)!;
    expect(script).toContain(
      `'/usr/bin/socat' UNIX-LISTEN:'${relaySocket(BOX.dir)}',fork,backlog=511 TCP:127.0.0.1:4000 </dev/null & `,
    );
    expect(script.indexOf("UNIX-LISTEN:")).toBeLessThan(script.indexOf("read -r _"));
  });

  it("starts the native relay without its dial socket when asked (benches)", () => {
    const relay = { kind: "native", path: "/opt/herd/tunnel-relay", dial: false } as const;
    const script = bwrapArgv({ ...BOX, uid: 200001 }, { ...TOOLS, relay }).at(-2)!;
    expect(script).toContain(`--listen '${relaySocket(BOX.dir)}' 4000 </dev/null & `);
    expect(script).not.toContain("dial.sock");
  });

  it("starts no relay for a worker on the host's network", () => {
    const argv = bwrapArgv({ ...BOX, network: false }, TOOLS);
    expect(argv.join(" ")).not.toContain("tunnel-relay");
    const script = argv.at(-2)!;
    expect(script.startsWith("read -r _")).toBe(true);
  });

  it("keeps the worker's code visible, read-only, when it lives under the private /tmp", () => {
    const keep = codeUnderTmp(["/tmp/ci/main/examples/python-repl", "python3", "/usr/bin/node"]);
    expect(keep).toEqual(["/tmp/ci"]);
    const joined = bwrapArgv({ ...BOX, keep }, TOOLS).join(" ");
    // After the tmpfs (else it would hide the bind), before the hidden files (which may lie inside).
    expect(joined).toContain("--tmpfs /run/lock --ro-bind /tmp/ci /tmp/ci");
    expect(joined.indexOf("--ro-bind /tmp/ci")).toBeLessThan(joined.indexOf("/dev/null"));
  });

  it("enters an egress worker's namespace instead of making one, with its own resolv.conf", () => {
    const argv = bwrapArgv(
      { ...BOX, netns: "/run/netns/herdeg7", resolvConf: "/run/herd-sandbox/a/1/resolv.conf" },
      TOOLS,
    );
    // nsenter outermost: the seccomp filter's fd 9 passes through it to bwrap.
    expect(argv.slice(0, 8)).toEqual([
      "/usr/bin/nsenter",
      "--net=/run/netns/herdeg7",
      "--",
      "/bin/sh",
      "-c",
      'exec "$@" 9<"$0"',
      BOX.seccomp,
      "/usr/bin/bwrap",
    ]);
    const joined = argv.join(" ");
    expect(joined).toContain("--seccomp 9");
    expect(joined).not.toContain("--unshare-net");
    expect(joined).toContain("--ro-bind /run/herd-sandbox/a/1/resolv.conf /etc/resolv.conf");
    expect(argv.at(-2)).toContain(" --listen ");
  });
  it("leaves out what the pool does not ask for", () => {
    const joined = bwrapArgv({ ...BOX, network: false, filesystem: false }, TOOLS).join(" ");
    expect(joined).not.toContain("--unshare-net");
    expect(joined).not.toContain("UNIX-LISTEN");
    expect(joined).not.toContain("--tmpfs /tmp");
    expect(joined).not.toContain("--tmpfs /var/tmp");
    expect(joined).not.toContain("setpriv");
  });
});
