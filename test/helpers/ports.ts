// Free TCP ports for tests. The port is only free at the moment of the check: a test that
// binds it later can still lose a race, which is acceptable for test servers on loopback.
import { createServer } from "node:net";

/** Binds 127.0.0.1:0, reads the port the OS chose, closes, returns it. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      if (addr === null || typeof addr === "string") {
        srv.close();
        reject(new Error("freePort: server has no TCP address"));
        return;
      }
      srv.close((err) => (err ? reject(err) : resolve(addr.port)));
    });
  });
}
