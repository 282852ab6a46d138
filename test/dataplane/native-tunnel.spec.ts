// The native tunnel relay (src/dataplane/native-relay.ts, native/tunnel-relay): open WebSocket
// tunnels are handed to it after their upgrade when scripts/setup-native.sh built it. Every
// tunnel contract holds there as with `pipe`: echoes intact and in order (both directions
// backed up at once included), the session's byte counts exact (against the client socket's
// own counters), a session's end closing its tunnels, the relay dying with the data plane and
// with a SIGKILLed daemon, a relay that dies or cannot take a tunnel's descriptors closing
// only those tunnels (new ones pipe). Real processes and sockets throughout.

import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { cmdline, descendants, waitForPidsGone } from "../helpers/index.ts";
import { type Stack, stackTracker, startStack } from "./stack.ts";
import { startStackProcess } from "./stack-process.ts";

const { track, stopAll } = stackTracker();
afterEach(stopAll);

const ROOT = join(import.meta.dirname, "..", "..");
const PIPE_ECHO_WORKER = join(import.meta.dirname, "pipe-echo-worker.mjs");
const RELAY = join(ROOT, ".tools", "native", "tunnel-relay");

beforeAll(() => {
  // What setup.sh does; cheap when the binary is up to date.
  execFileSync("bash", [join(ROOT, "scripts", "setup-native.sh")], { stdio: "ignore" });
  if (!existsSync(RELAY)) throw new Error(`${RELAY} was not built (is cc installed?)`);
});

function openWs(url: string, headers: Record<string, string> = {}): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.once("message", () => resolve(ws)); // the worker's hello
    ws.once("error", reject);
  });
}

function echo(ws: WebSocket, data: Buffer | string): Promise<Buffer> {
  return new Promise((resolve) => {
    ws.once("message", (m: Buffer) => resolve(m));
    ws.send(data);
  });
}

/** Small frames, then a large one (the relay's short writes), each echoed intact. */
async function traffic(ws: WebSocket): Promise<void> {
  for (let i = 0; i < 50; i++) {
    expect(String(await echo(ws, `message ${i}`))).toBe(`message ${i}`);
  }
  const big = Buffer.alloc(4 * 1024 * 1024);
  for (let i = 0; i < big.length; i += 4) big.writeUInt32LE(i, i);
  expect((await echo(ws, big)).equals(big)).toBe(true);
}

const wsUrl = (s: Stack, id: string) => `${s.url.replace("http:", "ws:")}/s/${id}/ws`;

/** The client socket under a ws: what it sent and received is what herd must count. */
const clientSocket = (ws: WebSocket) => (ws as unknown as { _socket: Socket })._socket;

describe("native tunnel relay", () => {
  it("relays a tunnel's bytes and counts them exactly, as pipe does", async () => {
    for (const nativeRelay of [RELAY, false] as const) {
      const s = track(await startStack([{}], { nativeRelay }));
      const ws = await openWs(wsUrl(s, "counted"));
      await traffic(ws);
      const sock = clientSocket(ws);
      expect(s.dp.counters.nativeTunnels).toBe(nativeRelay ? 1 : 0);
      // Live (a listing) and at the session's end, to the byte.
      const live = s.herd.sessions().find((x) => x.id === "counted")!.usage!;
      expect([live.rxBytes, live.txBytes]).toEqual([sock.bytesWritten, sock.bytesRead]);
      const closed = new Promise<number>((ok) => ws.once("close", ok));
      const ended = await s.herd.release("counted");
      expect([ended.usage!.rxBytes, ended.usage!.txBytes]).toEqual([
        sock.bytesWritten,
        sock.bytesRead,
      ]);
      // The session's end closes its tunnel at once.
      expect(await closed).toBe(1006);
      await s.stop();
    }
  });

  it("keeps both directions flowing, in order, when both are backed up", async () => {
    const s = track(
      await startStack([{ command: [process.execPath, PIPE_ECHO_WORKER] }], {
        nativeRelay: RELAY,
      }),
    );
    const sock = connect(s.dp.port, "127.0.0.1");
    sock.write(
      "GET /s/both-ways/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n",
    );
    const received: Buffer[] = [];
    let got = 0;
    const head = await new Promise<string>((ok) => {
      let buf = Buffer.alloc(0);
      const onData = (chunk: Buffer) => {
        buf = Buffer.concat([buf, chunk]);
        const end = buf.indexOf("\r\n\r\n");
        if (end < 0) return;
        sock.off("data", onData);
        sock.pause();
        if (buf.length > end + 4) received.push(buf.subarray(end + 4));
        ok(buf.subarray(0, end).toString("latin1"));
      };
      sock.on("data", onData);
    });
    expect(head).toMatch(/^HTTP\/1\.1 101 /);
    await expect.poll(() => s.dp.counters.nativeTunnels).toBe(1);
    // The client sends 32 MiB without reading: the echo backs up to the worker, which stops
    // reading (pipe), so both of the relay's directions come up short at once. Then it reads.
    const sent = Buffer.alloc(32 * 1024 * 1024);
    for (let i = 0; i < sent.length; i += 4) sent.writeUInt32LE(i, i);
    sock.write(sent);
    await new Promise((ok) => setTimeout(ok, 1_000));
    const all = new Promise<void>((ok) => {
      sock.on("data", (chunk: Buffer) => {
        received.push(chunk);
        got += chunk.length;
        if (got >= sent.length) ok();
      });
    });
    got = received.reduce((n, c) => n + c.length, 0);
    sock.resume();
    await all;
    expect(Buffer.concat(received).equals(sent)).toBe(true);
    sock.destroy();
  });

  it("passes a client's half-close on and still delivers the answer, as pipe does", async () => {
    for (const nativeRelay of [RELAY, false] as const) {
      const s = track(
        await startStack([{ command: [process.execPath, PIPE_ECHO_WORKER] }], { nativeRelay }),
      );
      const sock = connect(s.dp.port, "127.0.0.1");
      sock.write(
        "GET /s/half/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n",
      );
      const chunks: Buffer[] = [];
      sock.on("data", (chunk: Buffer) => chunks.push(chunk));
      const ended = new Promise<void>((ok) => sock.once("end", ok));
      await expect
        .poll(() => Buffer.concat(chunks).toString("latin1"), { timeout: 20_000 })
        .toMatch(/^HTTP\/1\.1 101 [^\r]*\r\n[\s\S]*\r\n\r\n/);
      if (nativeRelay) await expect.poll(() => s.dp.counters.nativeTunnels).toBe(1);
      // The last bytes and the FIN together: the worker's echo comes after the client's end,
      // then the worker's own end (pipe), which reaches the client as its end.
      const sent = Buffer.alloc(256 * 1024, 7);
      sock.end(sent);
      await ended;
      const all = Buffer.concat(chunks);
      const body = all.subarray(all.indexOf("\r\n\r\n") + 4);
      expect(body.length).toBe(sent.length);
      expect(body.equals(sent)).toBe(true);
      sock.destroy();
      await s.stop();
    }
  });

  it("closes a tunnel when the client leaves, settling its bytes and its lease", async () => {
    const s = track(await startStack([{}], { nativeRelay: RELAY }));
    const ws = await openWs(wsUrl(s, "leaving"));
    await traffic(ws);
    const sock = clientSocket(ws);
    expect(s.herd.lookup("leaving")!.connections).toBe(1);
    ws.terminate();
    await expect.poll(() => s.herd.lookup("leaving")?.connections, { timeout: 20_000 }).toBe(0);
    const usage = s.herd.sessions().find((x) => x.id === "leaving")!.usage!;
    expect([usage.rxBytes, usage.txBytes]).toEqual([sock.bytesWritten, sock.bytesRead]);
    expect(s.dp.openConnections).toBe(0);
  });

  it("dies with the data plane, leaving no counter file behind", async () => {
    const s = track(await startStack([{}], { nativeRelay: RELAY }));
    const relay = s.dp.nativeRelayPid!;
    expect(cmdline(relay)).toContain("tunnel-relay");
    const shm = existsSync("/dev/shm") ? "/dev/shm" : undefined;
    if (shm) {
      // Unnamed (O_TMPFILE), or unlinked as soon as it is open.
      expect(readdirSync(shm).filter((f) => f.includes(`counters-${process.pid}-`))).toEqual([]);
    }
    const ws = await openWs(wsUrl(s, "closing"));
    const closed = new Promise<number>((ok) => ws.once("close", ok));
    await s.stop();
    expect(await closed).toBe(1006);
    expect(await waitForPidsGone([relay], 20_000)).toEqual([]);
  });

  it("dies with a daemon killed by SIGKILL", async () => {
    const p = await startStackProcess();
    let killed = false;
    try {
      const ws = await openWs(`${p.url.replace("http:", "ws:")}/s/orphan/ws`);
      expect(String(await echo(ws, "x"))).toBe("x");
      const relays = descendants(p.pid).filter((pid) => cmdline(pid).includes("tunnel-relay"));
      expect(relays).toHaveLength(1);
      const all = descendants(p.pid);
      const closed = new Promise<number>((ok) => ws.once("close", ok));
      process.kill(p.pid, "SIGKILL");
      killed = true;
      expect(await waitForPidsGone(all, 20_000)).toEqual([]);
      expect(await closed).toBe(1006);
    } finally {
      if (!killed) await p.stop();
    }
  });

  it("a relay that dies closes only its own tunnels; new tunnels pipe", async () => {
    const s = track(await startStack([{}], { nativeRelay: RELAY }));
    const ws = await openWs(wsUrl(s, "lost"));
    await traffic(ws);
    const sock = clientSocket(ws);
    const closed = new Promise<number>((ok) => ws.once("close", ok));
    process.kill(s.dp.nativeRelayPid!, "SIGKILL");
    expect(await closed).toBe(1006);
    await expect.poll(() => s.herd.lookup("lost")?.connections, { timeout: 20_000 }).toBe(0);
    const usage = s.herd.sessions().find((x) => x.id === "lost")!.usage!;
    expect([usage.rxBytes, usage.txBytes]).toEqual([sock.bytesWritten, sock.bytesRead]);
    // The session lives on; its next tunnel pipes.
    const again = await openWs(wsUrl(s, "lost"));
    await traffic(again);
    expect(s.dp.counters.nativeTunnels).toBe(1);
    again.close();
  });

  it("closes a tunnel whose descriptors the relay cannot take (its open-files limit)", async () => {
    // The relay under an open-files limit that leaves room for one tunnel's two descriptors.
    const dir = mkdtempSync(join(tmpdir(), "herd-relay-nofile-"));
    try {
      const wrapper = join(dir, "tunnel-relay");
      writeFileSync(wrapper, `#!/bin/sh\nexec prlimit --nofile=8:8 ${RELAY} "$@"\n`, {
        mode: 0o755,
      });
      const s = track(await startStack([{}], { nativeRelay: wrapper }));
      const first = await openWs(wsUrl(s, "nofile"));
      expect(String(await echo(first, "one"))).toBe("one");
      const second = new WebSocket(`${wsUrl(s, "nofile")}`);
      second.on("error", () => {});
      // Closed, not left hanging; its lease with it; the first tunnel unharmed.
      await new Promise((ok) => second.once("close", ok));
      await expect.poll(() => s.herd.lookup("nofile")?.connections, { timeout: 20_000 }).toBe(1);
      expect(String(await echo(first, "two"))).toBe("two");
      expect(s.dp.counters.nativeTunnels).toBe(2);
      first.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("falls back to pipe when the relay cannot start", async () => {
    const s = track(await startStack([{}], { nativeRelay: join(ROOT, "no", "such-relay") }));
    expect(s.dp.nativeRelayPid).toBeUndefined();
    const ws = await openWs(wsUrl(s, "fallback"));
    await traffic(ws);
    expect(s.dp.counters.nativeTunnels).toBe(0);
    ws.close();
  });
});
