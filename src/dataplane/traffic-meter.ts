// Counts a session's data-plane bytes from its client sockets' own counters (bytesRead,
// bytesWritten), so the hot path pays nothing per request or chunk: bytes are settled into the
// session's SessionTraffic when its socket closes or starts carrying another session, and an
// open socket's unsettled bytes are read on demand (a listing) through `traffic.open`.
//
// Invariant: every byte of a client socket is counted once, for the session the socket carried
// when the byte was settled: the bytes read before a socket's first session count for it, and
// on a keep-alive connection that switches sessions the bytes up to the switch count for the
// session before (a request head read just before the switch goes with it). A lease without
// `traffic` (a session another node owns: the owner counts its forwarded traffic) leaves the
// socket uncounted. Single-threaded; the WeakMap lets sockets go without cleanup.

import type { Socket } from "node:net";
import type { SessionTraffic } from "../core/index.ts";

interface Meter {
  traffic: SessionTraffic | undefined;
  read: number;
  written: number;
  readonly pending: () => { rx: number; tx: number };
}

export class TrafficMeter {
  readonly #meters = new WeakMap<Socket, Meter>();

  /** From now on the socket's bytes count for `traffic` (what came before: see above). */
  attribute(socket: Socket, traffic: SessionTraffic | undefined): void {
    let meter = this.#meters.get(socket);
    if (meter?.traffic === traffic) return;
    if (meter === undefined) {
      const m: Meter = {
        traffic: undefined,
        read: 0,
        written: 0,
        pending: () => ({
          rx: socket.bytesRead - m.read,
          tx: socket.bytesWritten - m.written,
        }),
      };
      meter = m;
      this.#meters.set(socket, m);
      socket.once("close", () => this.#settle(socket, m));
    } else {
      this.#settle(socket, meter);
    }
    meter.traffic = traffic;
    traffic?.open.add(meter.pending);
  }

  #settle(socket: Socket, meter: Meter): void {
    const traffic = meter.traffic;
    if (traffic) {
      traffic.open.delete(meter.pending);
      traffic.rx += socket.bytesRead - meter.read;
      traffic.tx += socket.bytesWritten - meter.written;
    }
    meter.read = socket.bytesRead;
    meter.written = socket.bytesWritten;
    meter.traffic = undefined;
  }
}
