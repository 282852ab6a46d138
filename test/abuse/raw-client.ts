// Raw TCP clients for the abuse specs: what an attacker sends, byte by byte, without an HTTP
// client smoothing anything over. Every socket opened here is destroyed by `closeAll`.

import { connect, type Socket } from "node:net";

export interface RawConnection {
  socket: Socket;
  /** Everything the server sent so far. */
  readonly text: string;
  /** Resolves once the server closed the connection (or it failed). */
  closed: Promise<void>;
  write(s: string | Buffer): void;
}

const open = new Set<Socket>();

export function rawConnect(
  port: number,
  opts: { host?: string; localAddress?: string } = {},
): Promise<RawConnection> {
  return new Promise((resolve, reject) => {
    const socket = connect({
      port,
      host: opts.host ?? "127.0.0.1",
      localAddress: opts.localAddress,
    });
    open.add(socket);
    let text = "";
    socket.setEncoding("utf8");
    socket.on("data", (d: string) => {
      text += d;
    });
    const closed = new Promise<void>((done) => socket.once("close", () => done()));
    closed.then(() => open.delete(socket));
    socket.on("error", () => socket.destroy());
    socket.once("connect", () =>
      resolve({
        socket,
        get text() {
          return text;
        },
        closed,
        write: (s) => {
          if (socket.writable) socket.write(s);
        },
      }),
    );
    socket.once("close", () =>
      reject(new Error(`connection to port ${port} closed before connect`)),
    );
  });
}

export function closeAll(): void {
  for (const socket of open) socket.destroy();
  open.clear();
}

/** Polls `check` every 50 ms until it holds or `withinMs` passes; returns whether it held. */
export async function eventually(check: () => boolean, withinMs = 15_000): Promise<boolean> {
  const deadline = Date.now() + withinMs;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}
