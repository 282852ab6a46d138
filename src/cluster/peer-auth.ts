// Node-to-node credentials: an HMAC-SHA256 over (node, time, purpose) keyed with the cluster
// secret. A worker or client never holds the secret, so it cannot mint one; the purpose binds
// a data-plane credential to one session id, and the time bounds replay to a short window.
// Stateless and pure apart from the clock.

import { createHmac, timingSafeEqual } from "node:crypto";
import { PEER_HEADER } from "../core/index.ts";

/** Header carrying the credential on forwarded data-plane requests and control calls. */
export { PEER_HEADER };

/** How far a credential's time may be from ours (clock skew plus transit). */
const WINDOW_MS = 60_000;

export class PeerAuth {
  constructor(
    private readonly secret: string,
    readonly node: string,
  ) {}

  /** `node.time.mac`; `purpose` is "control" or "data:<session id>". */
  sign(purpose: string, now = Date.now()): string {
    return `${this.node}.${now}.${this.mac(this.node, now, purpose)}`;
  }

  /** The signing node's name when `credential` is genuine and fresh, else undefined. */
  verify(credential: string, purpose: string, now = Date.now()): string | undefined {
    const m = /^(.+)\.(\d{1,16})\.([A-Za-z0-9_-]{43})$/.exec(credential);
    if (!m) return undefined;
    const [, node, time, mac] = m as unknown as [string, string, string, string];
    const at = Number(time);
    if (Math.abs(now - at) > WINDOW_MS) return undefined;
    const want = Buffer.from(this.mac(node, at, purpose));
    const got = Buffer.from(mac);
    return want.length === got.length && timingSafeEqual(want, got) ? node : undefined;
  }

  private mac(node: string, time: number, purpose: string): string {
    return createHmac("sha256", this.secret)
      .update(`${node}\n${time}\n${purpose}`)
      .digest("base64url");
  }
}
