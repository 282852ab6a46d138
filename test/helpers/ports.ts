// Free TCP ports for tests, picked below the kernel's ephemeral range (ip_local_port_range,
// 32768–60999 by default), from which every worker port comes (the pool's ephemeralPort asks
// the kernel for one). A daemon binds its control and data ports after its first workers got
// theirs; a test port from the ephemeral range could be handed to a worker meanwhile — a
// contained worker then "reached the control plane" by connecting to itself inside its own
// network namespace (seen once in CI). The port is only free at the moment of the check: a test
// that binds it later can still lose a race to another test, which is acceptable on loopback.

import { readFileSync } from "node:fs";
import { createServer } from "node:net";

const LOWEST = 20_000;

/** The first port of the kernel's ephemeral range. */
function ephemeralStart(): number {
  try {
    return Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").split(/\s+/)[0]);
  } catch {
    return 32_768;
  }
}

const below = Math.max(ephemeralStart(), LOWEST + 1_000);

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

export async function freePort(): Promise<number> {
  for (;;) {
    const port = LOWEST + Math.floor(Math.random() * (below - LOWEST));
    if (await bindable(port)) return port;
  }
}
