// A TCP relay to put between an SDK and a control plane, so a test can cut the SDK's
// connections the way a flaky network or a restarted proxy does: `cut()` resets every relayed
// connection at once; while `down` is set, new connections are accepted and reset at once.
//
// Invariant: `pairs` holds exactly the relayed connections whose two sockets are both open.
// Concurrency: single-threaded (Node); socket events only.

import { connect, createServer, type Server, type Socket } from "node:net";

export interface TcpRelay {
  /** The relay's URL: the target's, with the relay's host and port. */
  readonly url: string;
  /** Resets (RST) every connection relayed so far; later connections relay again. */
  cut(): void;
  /** While true, every new connection is reset as soon as it is accepted. */
  down: boolean;
  /** Connections relayed since the start, for assertions. */
  readonly accepted: number;
  close(): Promise<void>;
}

export async function startTcpRelay(targetUrl: string): Promise<TcpRelay> {
  const target = new URL(targetUrl);
  const pairs = new Set<[Socket, Socket]>();
  let accepted = 0;
  const reset = (pair: [Socket, Socket]) => {
    pairs.delete(pair);
    for (const s of pair) s.resetAndDestroy();
  };
  const server: Server = createServer((client) => {
    if (relay.down) {
      client.resetAndDestroy();
      return;
    }
    accepted++;
    const upstream = connect(Number(target.port), target.hostname);
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    client.pipe(upstream).pipe(client);
    for (const s of pair) {
      s.on("error", () => reset(pair));
      s.on("close", () => reset(pair));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  const url = new URL(targetUrl);
  url.hostname = "127.0.0.1";
  url.port = String(port);
  const relay: TcpRelay = {
    url: url.origin,
    down: false,
    get accepted() {
      return accepted;
    },
    cut: () => {
      for (const pair of [...pairs]) reset(pair);
    },
    close: () =>
      new Promise<void>((resolve) => {
        relay.cut();
        server.close(() => resolve());
      }),
  };
  return relay;
}
