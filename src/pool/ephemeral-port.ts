// A port the OS considers free right now: bind 127.0.0.1:0, read the port, close. It is only
// free at that moment; whoever binds it later can lose a race (see PortReservations and the
// listener-ownership check for how the pool copes).

import { createServer } from "node:net";

export function ephemeralPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      if (address === null || typeof address === "string") {
        server.close();
        reject(new Error("ephemeralPort: server has no TCP address"));
        return;
      }
      server.close((err) => (err ? reject(err) : resolve(address.port)));
    });
  });
}
