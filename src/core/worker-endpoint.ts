// How the daemon reaches a worker's port: the one place that turns a worker address into
// connection options. A worker on the host network is "127.0.0.1:port"; a worker in its own
// network namespace is reached through a relay socket, "unix:/path" (see worker-sandbox.ts).
// Beside a native relay's socket, named so, is its dial socket: what connects there receives a
// TCP connection to the worker made inside the namespace (native/tunnel-relay's listen mode).

export type WorkerEndpoint = { host: string; port: number } | { socketPath: string };

const UNIX = "unix:";
/** The names of a contained worker's relay socket and its dial socket, in its relay directory. */
export const RELAY_SOCKET = "http.sock";
export const RELAY_DIAL_SOCKET = "dial.sock";

export function formatWorkerAddress(endpoint: WorkerEndpoint): string {
  return "socketPath" in endpoint
    ? `${UNIX}${endpoint.socketPath}`
    : `${endpoint.host}:${endpoint.port}`;
}

/** "unix:/path", "host:port" or "[v6]:port". */
export function workerEndpoint(address: string): WorkerEndpoint {
  if (address.startsWith(UNIX)) return { socketPath: address.slice(UNIX.length) };
  const colon = address.lastIndexOf(":");
  const host = address.slice(0, colon);
  return {
    host: host.startsWith("[") ? host.slice(1, -1) : host,
    port: Number(address.slice(colon + 1)),
  };
}

/** Options for net.connect. */
export function netConnectOptions(
  endpoint: WorkerEndpoint,
): { path: string } | { host: string; port: number } {
  return "socketPath" in endpoint ? { path: endpoint.socketPath } : endpoint;
}

/** Where the relay in front of `endpoint` hands out connections made inside the worker's
 *  namespace, if it is a contained worker's (the socket may be absent: socat's relay). */
export function relayDialSocket(endpoint: WorkerEndpoint): string | undefined {
  if (!("socketPath" in endpoint) || !endpoint.socketPath.endsWith(`/${RELAY_SOCKET}`)) {
    return undefined;
  }
  return `${endpoint.socketPath.slice(0, -RELAY_SOCKET.length)}${RELAY_DIAL_SOCKET}`;
}
