// Where the CLI finds the daemon: --addr / HERD_ADDR ("127.0.0.1:7070", "http://host:7070" or
// "unix:/run/herd.sock") and the token from --token / HERD_TOKEN. Shared by the two clients
// (unary-client.ts for one-call commands, client.ts for streams), so both read them alike.

export const DEFAULT_ADDR = "127.0.0.1:7070";

export interface ClientOptions {
  addr?: string;
  token?: string;
}

export interface DaemonAddress {
  /** http(s)://host:port; http://localhost for a Unix socket. */
  baseUrl: string;
  socketPath?: string;
  token?: string;
  /** The address as shown in messages. */
  where: string;
}

export function daemonAddress(opts: ClientOptions, env = process.env): DaemonAddress {
  const addr = opts.addr ?? env.HERD_ADDR ?? DEFAULT_ADDR;
  const token = opts.token ?? env.HERD_TOKEN;
  const unix = addr.startsWith("unix:") ? addr.slice("unix:".length) : undefined;
  const baseUrl = unix ? "http://localhost" : /^https?:\/\//.test(addr) ? addr : `http://${addr}`;
  return {
    baseUrl,
    ...(unix && { socketPath: unix }),
    ...(token && { token }),
    where: unix ? addr : baseUrl,
  };
}
