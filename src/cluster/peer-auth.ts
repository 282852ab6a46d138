// Node-to-node credentials, HMAC-SHA256 with a key derived from the cluster secret (never the
// key that signs Redis records). A worker, a client or a reader of Redis never holds the
// secret, so none can mint one.
//
//   control call:  `c2~node~target~time~nonce~mac` over (node, target, time, nonce, the
//                  procedure's path, SHA-256 of the request message): good for exactly one
//                  call, on one node, of one method with one body; a second use of its nonce
//                  is refused.
//   data hop:      `d2~node~target~time~mac` over (node, target, time, session id): bound to
//                  the owner and the session; the owner checks the MAC once per credential
//                  (later requests carrying the same string compare it with the cached one),
//                  and the sender mints one per session at most every few seconds — the hop
//                  pays an HMAC per credential, not per request.
//
// Time: a credential is accepted within ±CLOCK_SKEW_MS of the verifier's clock.
// State: the nonces seen (evicted once their credential's time is past the window, so the
// cache holds at most one window of calls) and the data credentials verified, likewise.

import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { PEER_HEADER } from "../dataplane/route.ts";
import { CLOCK_SKEW_MS } from "./live-nodes.ts";
import { deriveKey } from "./signed-record.ts";

/** Header carrying the credential on forwarded data-plane requests and control calls. */
export { PEER_HEADER };

/** How long a sender reuses a data credential it minted (well inside the window). */
const DATA_REUSE_MS = 5_000;

const CONTROL =
  /^c2~([A-Za-z0-9._-]{1,63})~([A-Za-z0-9._-]{1,63})~(\d{1,16})~([A-Za-z0-9_-]{22})~([A-Za-z0-9_-]{43})$/;
const DATA = /^d2~([A-Za-z0-9._-]{1,63})~([A-Za-z0-9._-]{1,63})~(\d{1,16})~([A-Za-z0-9_-]{43})$/;

/** SHA-256 of a request body, as bound into a control credential. */
export function bodyDigest(body: Uint8Array): string {
  return createHash("sha256").update(body).digest("base64url");
}

export class PeerAuth {
  readonly #key: Buffer;
  /** Nonces of control credentials already used → when they leave the window (ms). */
  readonly #nonces = new Map<string, number>();
  /** Data credentials this node verified → when they leave the window (ms). */
  readonly #verified = new Map<string, { node: string; until: number; session: string }>();
  /** Data credentials this node minted, per target and session. */
  readonly #minted = new Map<string, { credential: string; at: number }>();

  constructor(
    secret: string,
    readonly node: string,
  ) {
    this.#key = deriveKey(secret, "peer credentials v2");
  }

  /** A credential for one control call to `target`: `path` is /package.Service/Method. */
  control(target: string, path: string, body: Uint8Array, now = Date.now()): string {
    const nonce = randomBytes(16).toString("base64url");
    const mac = this.#mac(["control", this.node, target, now, nonce, path, bodyDigest(body)]);
    return `c2~${this.node}~${target}~${now}~${nonce}~${mac}`;
  }

  /**
   * The calling node's name when `credential` is genuine, for this node, this path and body,
   * fresh, and not seen before (its nonce is then spent); else undefined.
   */
  verifyControl(
    credential: string,
    path: string,
    body: Uint8Array,
    now = Date.now(),
  ): string | undefined {
    const m = CONTROL.exec(credential);
    if (!m) return undefined;
    const [, node, target, time, nonce, mac] = m as unknown as string[];
    const at = Number(time);
    if (target !== this.node || Math.abs(now - at) > CLOCK_SKEW_MS) return undefined;
    const want = this.#mac(["control", node!, target, at, nonce!, path, bodyDigest(body)]);
    if (!equal(mac!, want)) return undefined;
    this.#sweep(this.#nonces, now, (until) => until);
    if (this.#nonces.has(nonce!)) return undefined;
    this.#nonces.set(nonce!, at + CLOCK_SKEW_MS);
    return node;
  }

  /** The credential for forwarding `session`'s data-plane traffic to `target`. */
  data(target: string, session: string, now = Date.now()): string {
    const key = `${target}\n${session}`;
    const last = this.#minted.get(key);
    if (last && now - last.at < DATA_REUSE_MS && now >= last.at) return last.credential;
    this.#sweep(this.#minted, now, (m) => m.at + DATA_REUSE_MS);
    const credential = `d2~${this.node}~${target}~${now}~${this.#mac(["data", this.node, target, now, session])}`;
    this.#minted.set(key, { credential, at: now });
    return credential;
  }

  /** The forwarding node's name when `credential` is a genuine, fresh one for `session` here. */
  verifyData(credential: string, session: string, now = Date.now()): string | undefined {
    const seen = this.#verified.get(credential);
    if (seen !== undefined) {
      return seen.session === session && now <= seen.until ? seen.node : undefined;
    }
    const m = DATA.exec(credential);
    if (!m) return undefined;
    const [, node, target, time, mac] = m as unknown as string[];
    const at = Number(time);
    if (target !== this.node || Math.abs(now - at) > CLOCK_SKEW_MS) return undefined;
    if (!equal(mac!, this.#mac(["data", node!, target, at, session]))) return undefined;
    this.#sweep(this.#verified, now, (v) => v.until);
    this.#verified.set(credential, { node: node!, until: at + CLOCK_SKEW_MS, session });
    return node;
  }

  #mac(fields: (string | number)[]): string {
    return createHmac("sha256", this.#key).update(fields.join("\n")).digest("base64url");
  }

  /** Drops entries past their end from the front (insertion order ≈ time order). */
  #sweep<V>(map: Map<string, V>, now: number, until: (v: V) => number): void {
    for (const [k, v] of map) {
      if (until(v) >= now) break;
      map.delete(k);
    }
  }
}

function equal(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
