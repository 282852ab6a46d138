// The native tunnel relay (native/tunnel-relay): a child process that moves an open WebSocket
// tunnel's bytes on its own epoll loop once herd has done the upgrade, so no chunk of an open
// tunnel passes through Node's stream layer. herd hands it the two sockets' descriptors over
// the child_process IPC channel (SCM_RIGHTS; the relay answers Node's NODE_HANDLE_ACK itself)
// and keeps its own net.Socket objects open, not reading, for as long as the relay relays:
// so the connection gate, the tunnel set, the lease and the traffic meter see the tunnel
// open exactly as long as it is, and their 'close' handlers run as for a JavaScript tunnel.
//
// Invariants: a handed-over tunnel's client bytes are counted once: what Node read and wrote
// before the hand-over by the socket's own counters (traffic-meter.ts), what the relay moved
// after it through the shared counter file (one slot of two uint64 per tunnel, written by the
// relay per chunk, read here on demand: `traffic.open` while it is open, settled into the
// session's totals when the relay reports it closed). A tunnel is closed by whichever side
// goes first: the relay seeing a socket end ("closed" → herd destroys its sockets), or herd
// destroying its sockets (session end, data plane close → "close" → the relay shuts both
// down). The relay dies with the daemon (pdeathsig, and EOF on the channel); if it dies
// first, every tunnel it held is settled and closed, and new tunnels use `pipe` again.
//
// Dials: a contained worker's relay (listen mode, inside the worker's network namespace) can
// make the TCP connection to the worker there and pass it out over its dial socket; Node cannot
// receive a descriptor on a Unix socket of its own, so this relay receives it and passes it on
// over the IPC channel (a NODE_HANDLE message, acknowledged by Node itself). dial() answers a
// connected net.Socket, or rejects (no dial socket, the worker refused, the relay gone, no
// answer within DIAL_TIMEOUT_MS): the caller then connects through the relay socket as before.
// Single-threaded (the event loop); a slot is reused only after the relay said "closed".

import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  closeSync,
  constants,
  existsSync,
  ftruncateSync,
  openSync,
  readSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Logger, SessionTraffic } from "../core/index.ts";

/** Tunnels the relay holds at once at most (its counter file: 16 bytes each). */
const SLOTS = 65_536;
/** Grace for the relay to exit after its channel closed, before SIGKILL. */
const STOP_GRACE_MS = 1_000;

/**
 * How long a dial may take before the caller connects through the relay socket instead. Both
 * relays answer at once unless frozen (a missing or dead relay refuses the connect), so this is
 * only a bound, generous enough for a loaded host; the upgrade itself has data_timeout.
 */
const DIAL_TIMEOUT_MS = 10_000;

/** Linux's O_TMPFILE (x86-64, arm64): open a directory for an unnamed file in it. */
const O_TMPFILE = 0o20200000;

/**
 * The shared counter file, SLOTS slots long: unnamed, so that a daemon killed at any moment
 * leaves none behind (O_TMPFILE; else named, and unlinked at once).
 */
function counterFile(): number {
  const dir = existsSync("/dev/shm") ? "/dev/shm" : tmpdir();
  let fd: number;
  try {
    fd = openSync(dir, constants.O_RDWR | O_TMPFILE, 0o600);
  } catch {
    const path = join(dir, `herd-tunnel-counters-${process.pid}-${randomBytes(6).toString("hex")}`);
    fd = openSync(path, "wx+", 0o600);
    unlinkSync(path);
  }
  try {
    ftruncateSync(fd, SLOTS * 16);
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  return fd;
}

interface Relayed {
  client: Socket;
  upstream: Socket;
  traffic: SessionTraffic | undefined;
  pending: () => { rx: number; tx: number };
}

export class NativeRelay {
  readonly #child: ChildProcess;
  readonly #counters: number;
  readonly #logger: Logger;
  readonly #tunnels = new Map<number, Relayed>();
  readonly #free: number[] = [];
  #nextSlot = 0;
  #alive = true;
  readonly #exited: Promise<void>;
  readonly #slotBuf = Buffer.alloc(16);
  readonly #dials = new Map<number, (socket: Socket | Error) => void>();
  #nextDial = 0;

  /** Starts the relay `binary`; throws when it cannot be started. */
  constructor(binary: string, logger: Logger) {
    this.#logger = logger;
    this.#counters = counterFile();
    try {
      this.#child = spawn(binary, ["4", String(process.pid)], {
        stdio: ["ignore", "ignore", "inherit", "ipc", this.#counters],
        serialization: "json",
      });
      this.#child.on("error", (err) => this.#logger.warn({ err }, "native tunnel relay: error"));
      // No pid: it could not be started (its 'error' follows, and no 'exit').
      if (this.#child.pid === undefined) throw new Error(`cannot start ${binary}`);
    } catch (err) {
      closeSync(this.#counters);
      throw err;
    }
    this.#exited = new Promise((resolve) => this.#child.once("exit", () => resolve()));
    this.#child.once("exit", (code, signal) => this.#lost(code, signal));
    this.#child.on(
      "message",
      (msg: { closed?: number; dialed?: number; error?: string }, handle) => {
        if (typeof msg?.closed === "number") this.#closed(msg.closed);
        else if (typeof msg?.dialed === "number") this.#dialed(msg.dialed, handle, msg.error);
      },
    );
    // The daemon's liveness is its own business: an idle relay keeps nothing running.
    this.#child.unref();
    this.#child.channel?.unref();
  }

  /** The relay's pid (tests, benches). */
  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** Whether a tunnel can be handed over now. */
  get usable(): boolean {
    return this.#alive && (this.#free.length > 0 || this.#nextSlot < SLOTS);
  }

  /**
   * Hands the tunnel over: both sockets must be established, read-stopped, with nothing left
   * unread in their streams nor unwritten in Node (the caller flushed both). From now on the
   * relay moves their bytes; closing either socket closes the tunnel.
   */
  adopt(client: Socket, upstream: Socket, traffic: SessionTraffic | undefined): void {
    if (!this.usable) {
      // It died while the caller flushed: Node no longer reads these sockets.
      client.destroy();
      upstream.destroy();
      return;
    }
    const slot = this.#free.pop() ?? this.#nextSlot++;
    writeSync(this.#counters, Buffer.alloc(16), 0, 16, slot * 16);
    const relayed: Relayed = {
      client,
      upstream,
      traffic,
      pending: () => this.#read(slot),
    };
    this.#tunnels.set(slot, relayed);
    traffic?.open.add(relayed.pending);
    const closeBoth = () => {
      if (this.#tunnels.get(slot) !== relayed) return;
      this.#send({ close: slot });
      client.destroy();
      upstream.destroy();
    };
    client.once("close", closeBoth);
    upstream.once("close", closeBoth);
    const failed = (err: Error | null) => {
      if (err === null) return;
      this.#logger.debug({ err }, "native tunnel relay: hand-over failed");
      closeBoth();
    };
    const { _handle: clientHandle } = client as unknown as { _handle: object };
    const { _handle: upstreamHandle } = upstream as unknown as { _handle: object };
    this.#child.send({ t: slot, s: 0 }, clientHandle as never, {}, failed);
    this.#child.send({ t: slot, s: 1 }, upstreamHandle as never, {}, failed);
  }

  /**
   * A TCP connection to a contained worker, made inside its network namespace by its relay,
   * which listens for dials on `dialSocket`. Rejects when there is none to be had (see above).
   */
  dial(dialSocket: string): Promise<Socket> {
    if (!this.#alive) return Promise.reject(new Error("the native relay is not running"));
    const id = ++this.#nextDial;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => answer(new Error("no answer")), DIAL_TIMEOUT_MS);
      const answer = (got: Socket | Error) => {
        clearTimeout(timer);
        this.#dials.delete(id);
        if (got instanceof Error) reject(new Error(`dial ${dialSocket}: ${got.message}`));
        else resolve(got);
      };
      this.#dials.set(id, answer);
      this.#send({ dial: id, path: dialSocket });
    });
  }

  /** The relay's answer to dial `id`: a TCP handle (net.Native), or why there is none. */
  #dialed(id: number, handle: unknown, error: string | undefined): void {
    const answer = this.#dials.get(id);
    const tcp = handle as { close(): void } | undefined;
    if (answer === undefined) {
      tcp?.close(); // it came too late: nobody waits for it
      return;
    }
    if (tcp === undefined) answer(new Error(error ?? "no socket"));
    else answer(new Socket({ handle: tcp, readable: true, writable: true } as never));
  }

  /** Closes the channel (the relay then closes every tunnel and exits) and waits for it. */
  async stop(): Promise<void> {
    if (this.#alive && this.#child.connected) this.#child.disconnect();
    const timer = setTimeout(() => this.#child.kill("SIGKILL"), STOP_GRACE_MS);
    await this.#exited;
    clearTimeout(timer);
  }

  #send(msg: object): void {
    if (this.#alive && this.#child.connected) this.#child.send(msg, undefined, {}, () => {});
  }

  /** The relay's counts for `slot`: the client socket's bytes read and written since adopt. */
  #read(slot: number): { rx: number; tx: number } {
    const buf = this.#slotBuf;
    readSync(this.#counters, buf, 0, 16, slot * 16);
    return { rx: Number(buf.readBigUInt64LE(0)), tx: Number(buf.readBigUInt64LE(8)) };
  }

  /** The relay closed `slot` (or died): settle its counts, then close herd's sockets. */
  #closed(slot: number): void {
    const relayed = this.#tunnels.get(slot);
    if (relayed === undefined) return;
    this.#tunnels.delete(slot);
    const { traffic } = relayed;
    if (traffic) {
      const { rx, tx } = relayed.pending();
      traffic.open.delete(relayed.pending);
      traffic.rx += rx;
      traffic.tx += tx;
    }
    if (this.#alive) this.#free.push(slot);
    relayed.client.destroy();
    relayed.upstream.destroy();
  }

  #lost(code: number | null, signal: NodeJS.Signals | null): void {
    if (this.#alive && this.#tunnels.size > 0) {
      this.#logger.warn({ code, signal }, "native tunnel relay exited; its tunnels are closed");
    }
    this.#alive = false;
    for (const slot of [...this.#tunnels.keys()]) this.#closed(slot);
    for (const answer of [...this.#dials.values()]) answer(new Error("the native relay exited"));
    closeSync(this.#counters);
  }
}

/** Node's internals a hand-over touches: the stream's read state and the socket's handle. */
interface Internals {
  _handle: { reading?: boolean; readStop(): number } | null;
  _readableState: { ended: boolean };
  _read: (size: number) => void;
}

/**
 * Gives an established pair of sockets to the native relay (an upgraded tunnel, a relay hop):
 * stops Node reading both, writes `toClient` and `toUpstream` each followed by what Node had
 * read from the other side and not delivered, and hands both descriptors over once Node has
 * written everything. False (nothing done) when a socket has already seen its end: that pair
 * closes soon, through `pipe`.
 */
export function handOver(
  relay: NativeRelay,
  client: Socket,
  upstream: Socket,
  toClient: Buffer[],
  toUpstream: Buffer[],
  traffic: SessionTraffic | undefined,
): boolean {
  const c = client as unknown as Internals;
  const u = upstream as unknown as Internals;
  if (
    c._handle === null ||
    u._handle === null ||
    c._readableState.ended ||
    u._readableState.ended
  ) {
    return false;
  }
  for (const s of [c, u]) {
    // No read of Node's from here on: its stream would otherwise restart reading the handle
    // (to refill its buffer), taking bytes from under the relay.
    s._read = () => {};
    if (s._handle?.reading) {
      s._handle.reading = false;
      s._handle.readStop();
    }
  }
  toClient.push(...unread(upstream));
  toUpstream.push(...unread(client));
  let writes = 0;
  const written = (err?: Error | null) => {
    if (err || --writes > 0) return;
    if (!client.destroyed && !upstream.destroyed) relay.adopt(client, upstream, traffic);
  };
  const write = (socket: Socket, chunks: Buffer[]) => {
    const bytes = Buffer.concat(chunks);
    if (bytes.length === 0) return;
    writes++;
    socket.write(bytes, written);
  };
  write(client, toClient);
  write(upstream, toUpstream);
  return true;
}

/** What a read-stopped socket's stream holds, unread. */
function unread(socket: Socket): Buffer[] {
  const chunks: Buffer[] = [];
  for (let chunk = socket.read() as Buffer | null; chunk !== null; chunk = socket.read()) {
    chunks.push(chunk);
  }
  return chunks;
}
