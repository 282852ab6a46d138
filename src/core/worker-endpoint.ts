// How the daemon reaches a worker's port: the one place that turns a worker address into
// connection options. A worker on the host network is "127.0.0.1:port"; a worker in its own
// network namespace is reached through a relay socket, "unix:/path" (see worker-sandbox.ts).

export type WorkerEndpoint = { host: string; port: number } | { socketPath: string };

const UNIX = "unix:";

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
