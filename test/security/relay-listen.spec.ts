// The relay into a worker's private network (native/tunnel-relay in its listen mode, started
// by the sandbox in the worker's namespace: src/sandbox/bwrap-argv.ts), driven here directly
// against a TCP server on loopback: each connection on its Unix socket is paired with a new one
// to the port, in one process; a port nobody listens on closes the client's connection (as a
// worker that is not listening yet must look to readiness probes); a client's half-close is
// passed on and the answer still comes back; the server's close ends the pair; a large echo
// backed up both ways arrives intact. Its dial socket hands out connections to the port made
// by the relay (for herd's own relay, src/dataplane/native-relay.ts, which passes them on to
// the daemon): a dial gets a socket that talks to the server with no relay between; a port
// nobody listens on, or no dial socket at all, gets a refusal, not a hang. Real processes and
// sockets; the relays are gone afterwards.

import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { NativeRelay } from "../../src/dataplane/index.ts";
import { descendants, waitForPidsGone } from "../helpers/index.ts";
import { freePort } from "../helpers/ports.ts";

const ROOT = join(import.meta.dirname, "..", "..");
const RELAY = join(ROOT, ".tools", "native", "tunnel-relay");

beforeAll(() => {
  execFileSync("bash", [join(ROOT, "scripts", "setup-native.sh")], { stdio: "ignore" });
  if (!existsSync(RELAY)) throw new Error(`${RELAY} was not built (is cc installed?)`);
});

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function startRelay(
  port: number,
): Promise<{ path: string; dial: string; relay: ChildProcess }> {
  const dir = mkdtempSync(join(tmpdir(), "herd-relay-listen-"));
  const path = join(dir, "http.sock");
  const dial = join(dir, "dial.sock");
  const relay = spawn(RELAY, ["--listen", path, String(port), dial], { stdio: "ignore" });
  cleanups.push(async () => {
    relay.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
    expect(await waitForPidsGone([relay.pid!], 10_000), "the relay is gone").toEqual([]);
  });
  // Listening once a connect is accepted: the socket's file appears at bind, before listen.
  for (let i = 0; !(await accepts(path)); i++) {
    if (i >= 500) throw new Error(`the relay did not listen on ${path}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return { path, dial, relay };
}

function accepts(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = connect({ path });
    probe.once("connect", () => {
      probe.destroy();
      resolve(true);
    });
    probe.once("error", () => resolve(false));
  });
}

async function startServer(onConnection: (socket: Socket) => void): Promise<number> {
  const open = new Set<Socket>();
  const server: Server = createServer((socket) => {
    open.add(socket);
    socket.once("close", () => open.delete(socket));
    onConnection(socket);
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of open) socket.destroy();
      }),
  );
  return port;
}

/** Everything `socket` receives until its end. */
function received(socket: Socket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    socket.on("data", (c) => chunks.push(c));
    socket.on("end", () => resolve(Buffer.concat(chunks)));
    socket.on("error", reject);
  });
}

describe("the relay into a private network (listen mode)", () => {
  it("pairs every connection with one to the port, in one process", async () => {
    const port = await startServer((s) =>
      s.once("data", (d) => s.end(`echo ${d.toString().trim()}`)),
    );
    const { path, relay } = await startRelay(port);
    const clients = Array.from({ length: 20 }, () => connect({ path }));
    const answers = clients.map(received);
    for (const [i, c] of clients.entries()) c.write(`${i}\n`);
    expect((await Promise.all(answers)).map(String)).toEqual(clients.map((_, i) => `echo ${i}`));
    expect(descendants(relay.pid!)).toEqual([]);
  });

  it("closes a client's connection when nothing listens on the port", async () => {
    const port = await freePort();
    const { path } = await startRelay(port);
    const client = connect({ path });
    client.write("GET / HTTP/1.1\r\n\r\n");
    const got = await new Promise<string>((resolve) => {
      client.on("data", () => resolve("data"));
      client.on("end", () => resolve("end"));
      client.on("error", (err: NodeJS.ErrnoException) => resolve(err.code ?? "error"));
    });
    expect(got).not.toBe("data");
  });

  it("passes a client's half-close on, and the answer still comes back", async () => {
    // The server answers only once it has read the client's whole request, to its end.
    const port = await startServer((s) => {
      let n = 0;
      s.on("data", (d) => {
        n += d.length;
      });
      s.on("end", () => s.end(`read ${n}`));
    });
    const { path } = await startRelay(port);
    const client = connect({ path });
    const answer = received(client);
    client.end("x".repeat(1000));
    expect(String(await answer)).toBe("read 1000");
  });

  it("ends the pair when the server closes", async () => {
    const port = await startServer((s) => s.end("bye"));
    const { path } = await startRelay(port);
    const client = connect({ path });
    expect(String(await received(client))).toBe("bye");
  });

  it("moves a large echo backed up both ways intact", async () => {
    const port = await startServer((s) => s.pipe(s));
    const { path } = await startRelay(port);
    const client = connect({ path });
    const big = Buffer.alloc(16 * 1024 * 1024);
    for (let i = 0; i < big.length; i += 4) big.writeUInt32LE(i, i);
    const back: Buffer[] = [];
    let got = 0;
    const done = new Promise<void>((resolve) =>
      client.on("data", (c) => {
        back.push(c);
        got += c.length;
        if (got >= big.length) resolve();
      }),
    );
    // Written at once, read only after: both directions back up before anything drains.
    client.pause();
    client.write(big);
    await new Promise((r) => setTimeout(r, 200));
    client.resume();
    await done;
    client.destroy();
    expect(Buffer.concat(back).equals(big)).toBe(true);
  }, 30_000);
});

describe("dials: connections made by the relay, passed to herd's own relay and on to Node", () => {
  const quiet = { debug() {}, info() {}, warn() {}, error() {} };
  async function herdRelay(): Promise<NativeRelay> {
    const relay = new NativeRelay(RELAY, quiet as never);
    cleanups.push(async () => {
      const pid = relay.pid!;
      await relay.stop();
      expect(await waitForPidsGone([pid], 10_000), "herd's relay is gone").toEqual([]);
    });
    return relay;
  }

  it("hands out a socket connected to the port, which no relay stands between", async () => {
    let peer: { port: number | undefined } = { port: undefined };
    const port = await startServer((s) => {
      peer = { port: s.remotePort };
      s.on("data", (d) => s.write(`echo ${d}`));
    });
    const { dial, relay: listening } = await startRelay(port);
    const relay = await herdRelay();
    const sockets = await Promise.all(Array.from({ length: 5 }, () => relay.dial(dial)));
    for (const [i, socket] of sockets.entries()) {
      const answer = new Promise<string>((resolve) => socket.once("data", (d) => resolve(`${d}`)));
      socket.write(`${i}`);
      expect(await answer).toBe(`echo ${i}`);
    }
    // The server's peer is the socket itself: its local port is the one the server sees.
    expect(sockets.at(-1)!.localPort).toBe(peer.port);
    expect(descendants(listening.pid!)).toEqual([]);
    for (const socket of sockets) socket.destroy();
    // One after another, too (a socket passed on outlives the relay's descriptor of it: its
    // registration must not), and the relay socket still pairs connections after them.
    for (let i = 0; i < 3; i++) {
      const socket = await relay.dial(dial);
      const answer = new Promise<string>((resolve) => socket.once("data", (d) => resolve(`${d}`)));
      socket.write(`again ${i}`);
      expect(await answer).toBe(`echo again ${i}`);
      socket.destroy();
    }
    const plain = connect({ path: join(dial, "..", "http.sock") });
    const answer = new Promise<string>((resolve) => plain.once("data", (d) => resolve(`${d}`)));
    plain.write("plain");
    expect(await answer).toBe("echo plain");
    plain.destroy();
    expect(listening.exitCode).toBe(null);
  });

  it("refuses a dial when nothing listens on the port, or there is no dial socket", async () => {
    const { dial } = await startRelay(await freePort());
    const relay = await herdRelay();
    await expect(relay.dial(dial)).rejects.toThrow(/refused/);
    await expect(relay.dial(join(tmpdir(), "herd-no-such-dir", "dial.sock"))).rejects.toThrow(
      /ENOENT/,
    );
    // ...and still serves the next one.
    const port = await startServer((s) => s.end("hi"));
    const { dial: working } = await startRelay(port);
    const socket = await relay.dial(working);
    expect(String(await received(socket))).toBe("hi");
  });
});
