// Is a loopback TCP client of the control plane one of herd's workers? A worker on the host's
// network (`network: host`) reaches the control plane on loopback, where it asks no token unless
// `control.token` is set: it could list every session with its token, or end another tenant's.
// The kernel knows which uid owns the client's end of a loopback connection (/proc/net/tcp{,6});
// a uid a worker holds right now (a host-wide claim, uid-claims.ts) is refused before a byte is
// read. A worker that runs as the daemon's own uid (`user: inherit`) cannot be told from the
// operator's CLI this way: that is what `control.token` and `network: private` are for.
// Pure reads of /proc; called once per new control-plane connection.

import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { UID_CLAIMS_DIR } from "./uid-claims.ts";

interface Peer {
  remoteAddress?: string | undefined;
  remotePort?: number | undefined;
  localPort?: number | undefined;
}

const LOOPBACK = /^(127\.|::1$|::ffff:127\.)/;

/** The uid owning the client's end of a loopback connection, if the kernel lists it. */
function clientUid(peer: Peer): number | undefined {
  const port = (n: number) => n.toString(16).toUpperCase().padStart(4, "0");
  const local = `:${port(peer.remotePort!)}`;
  const remote = `:${port(peer.localPort!)}`;
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = readFileSync(table, "latin1");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[1]?.endsWith(local) && f[2]?.endsWith(remote)) return Number(f[7]);
    }
  }
  return undefined;
}

/** Why this control-plane client is refused (a worker's uid), or undefined. */
export function workerPeer(peer: Peer, claimsDir = UID_CLAIMS_DIR): string | undefined {
  if (!peer.remoteAddress || !LOOPBACK.test(peer.remoteAddress)) return undefined;
  if (peer.remotePort === undefined || peer.localPort === undefined) return undefined;
  const uid = clientUid(peer);
  if (uid === undefined || uid === 0 || !existsSync(join(claimsDir, String(uid)))) return undefined;
  return `a loopback client running as uid ${uid}, which a herd worker holds`;
}
