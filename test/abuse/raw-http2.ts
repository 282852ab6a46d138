// An HTTP/2 client that ignores what the server advertises: it writes the frames itself, so
// it opens as many streams as it likes whatever SETTINGS_MAX_CONCURRENT_STREAMS says (node's
// own client would queue them, an attacker does not), and it reads every frame the server
// sends back, counting per stream what became of it. Headers are HPACK literals (no Huffman,
// no table), which every server must accept.

import { connect, type Socket } from "node:net";

const FRAME = { data: 0, headers: 1, rstStream: 3, settings: 4, goaway: 7, windowUpdate: 8 };
const FLAG = { endStream: 0x1, ack: 0x1, endHeaders: 0x4 };
const PREFACE = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/** RST_STREAM / GOAWAY error codes (RFC 9113, 7). */
export const H2_ERROR = { refusedStream: 7 } as const;

function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream, 5);
  return Buffer.concat([head, payload]);
}

/** An HPACK integer with an `prefix`-bit prefix, the first byte's high bits `high`. */
function hpackInt(value: number, prefix: number, high: number): number[] {
  const max = (1 << prefix) - 1;
  if (value < max) return [high | value];
  const out = [high | max];
  for (let v = value - max; ; v >>= 7) {
    if (v < 128) return [...out, v];
    out.push((v & 127) | 128);
  }
}

/** Literal header fields without indexing, new names: no HPACK state on either side. */
function hpack(headers: Record<string, string>): Buffer {
  const bytes: number[] = [];
  for (const [name, value] of Object.entries(headers)) {
    bytes.push(0, ...hpackInt(name.length, 7, 0), ...Buffer.from(name, "latin1"));
    bytes.push(...hpackInt(value.length, 7, 0), ...Buffer.from(value, "latin1"));
  }
  return Buffer.from(bytes);
}

/** One gRPC message frame: uncompressed, with its length. */
export function grpcMessage(body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(body.length, 1);
  return Buffer.concat([head, body]);
}

export interface RawHttp2 {
  socket: Socket;
  /** Streams the server answered with response headers. */
  readonly answered: Set<number>;
  /** Streams the server reset, with the error code. */
  readonly reset: Map<number, number>;
  /** The GOAWAY's error code, once the server sent one. */
  readonly goaway: number | undefined;
  readonly closed: boolean;
  /** Opens `count` streams at once, each a POST of `body` to `path` ending the request. */
  openStreams(count: number, path: string, body: Buffer): void;
  close(): void;
}

export function rawHttp2(port: number): Promise<RawHttp2> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: "127.0.0.1" });
    const answered = new Set<number>();
    const reset = new Map<number, number>();
    let goaway: number | undefined;
    let closed = false;
    let nextStream = 1;
    let pending: Buffer = Buffer.alloc(0);
    socket.on("error", () => socket.destroy());
    socket.once("close", () => {
      closed = true;
      reject(new Error("closed before connect"));
    });
    socket.on("data", (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      while (pending.length >= 9) {
        const length = pending.readUIntBE(0, 3);
        if (pending.length < 9 + length) break;
        const type = pending[3]!;
        const flags = pending[4]!;
        const stream = pending.readUInt32BE(5) & 0x7fffffff;
        const payload = pending.subarray(9, 9 + length);
        pending = pending.subarray(9 + length);
        if (type === FRAME.headers) answered.add(stream);
        else if (type === FRAME.rstStream) reset.set(stream, payload.readUInt32BE(0));
        else if (type === FRAME.goaway) goaway = payload.readUInt32BE(4);
        else if (type === FRAME.settings && !(flags & FLAG.ack)) {
          socket.write(frame(FRAME.settings, FLAG.ack, 0, Buffer.alloc(0)));
        }
      }
    });
    socket.once("connect", () => {
      // Large windows, so the server is never held back by flow control: all it is asked for
      // it can send, and so keep in memory only what it chooses to.
      const settings = Buffer.alloc(6);
      settings.writeUInt16BE(0x4, 0); // SETTINGS_INITIAL_WINDOW_SIZE
      settings.writeUInt32BE(2 ** 24, 2);
      const windowUpdate = Buffer.alloc(4);
      windowUpdate.writeUInt32BE(2 ** 31 - 1 - 65_535);
      socket.write(
        Buffer.concat([
          Buffer.from(PREFACE, "latin1"),
          frame(FRAME.settings, 0, 0, settings),
          frame(FRAME.windowUpdate, 0, 0, windowUpdate),
        ]),
      );
      resolve({
        socket,
        answered,
        reset,
        get goaway() {
          return goaway;
        },
        get closed() {
          return closed;
        },
        openStreams(count, path, body) {
          const headers = hpack({
            ":method": "POST",
            ":scheme": "http",
            ":path": path,
            ":authority": `127.0.0.1:${port}`,
            "content-type": "application/grpc",
            te: "trailers",
          });
          const frames: Buffer[] = [];
          for (let i = 0; i < count; i++, nextStream += 2) {
            frames.push(frame(FRAME.headers, FLAG.endHeaders, nextStream, headers));
            frames.push(frame(FRAME.data, FLAG.endStream, nextStream, body));
          }
          if (!socket.destroyed) socket.write(Buffer.concat(frames));
        },
        close: () => socket.destroy(),
      });
    });
  });
}
