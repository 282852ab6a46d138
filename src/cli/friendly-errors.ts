// Startup failures as one line that says what is wrong and what to do (issue 6, item 4).

import { isHerdError } from "../core/index.ts";
import { ListenError } from "../server/index.ts";

/** `setting` is where the address comes from, e.g. "control.listen in herd.yaml". */
export function describeListenFailure(
  code: string | undefined,
  address: string,
  setting: string,
): string {
  switch (code) {
    case "EADDRINUSE":
      return `${address} is already in use (${setting}): another herd or another program is listening there. Stop it, or choose a free port in ${setting}`;
    case "EACCES":
      return `not allowed to listen on ${address} (${setting}): ports below 1024 need root. Choose a port of 1024 or more`;
    case "EADDRNOTAVAIL":
      return `cannot listen on ${address} (${setting}): that address does not belong to this machine`;
    default:
      return `cannot listen on ${address} (${setting}): ${code ?? "unknown error"}`;
  }
}

export function describeStartupError(err: unknown, settings: Record<string, string>): string {
  if (err instanceof ListenError) {
    return describeListenFailure(err.code, err.address, settings[err.address] ?? "herd.yaml");
  }
  const errno = err as NodeJS.ErrnoException & { address?: string; port?: number };
  if (typeof errno?.code === "string" && errno.syscall === "listen") {
    const address = errno.address !== undefined ? `${errno.address}:${errno.port}` : "?";
    const setting = Object.entries(settings).find(([a]) => a.endsWith(`:${errno.port}`))?.[1];
    return describeListenFailure(errno.code, address, setting ?? "herd.yaml");
  }
  if (isHerdError(err)) return err.message;
  return err instanceof Error ? err.message : String(err);
}
