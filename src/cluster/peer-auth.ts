// Node-to-node credentials, HMAC-SHA256 with a key derived from the cluster secret (never the
// key that signs Redis records). A worker, a client or a reader of Redis never holds the
// secret, so none can mint one.
//
//   control call:  `c2~node~target~time~nonce~mac` over (node, target, time, nonce, the
//                  procedure's path, SHA-256 of the request message): good for exactly one
//                  call, on one node, of one method with one body; a second use of its nonce
//                  is refused.
//   data hop:      `d3~node~target~time~nonce~mac` over (node, target, time, nonce): a
//                  handshake per upstream connection. Its bodies stream, so it binds the
//                  connection, not a request: the sender mints one for each connection it
//                  opens to the owner and sends it on every request of that connection; the
//                  owner verifies it on the first (fresh, for this node, nonce unseen) and binds
//                  it to that connection, so later requests cost a string comparison, and the
//                  same credential on any other connection is a replay, refused.
//   relay hop:      `r1~node~target~time~nonce~client~mac` over (node, target, time, nonce,
//                  client): the one-line preamble that opens a relayed client connection
//                  (src/dataplane/relay-hop.ts). The sending node vouches for the client's
//                  address; the owner serves the rest of that connection's bytes as a client
//                  connection of its own from that address. Good for exactly one connection: a
//                  second use of its nonce is refused.
//
// Time: a credential is accepted within ±CLOCK_SKEW_MS of the verifier's clock.
// State: the nonces seen (evicted once their credential's time is past the window, so the
// cache holds at most one window of handshakes and calls), and each connection's credential
// (a WeakMap: it goes with the connection).

import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { PEER_HEADER } from "../core/index.ts";
import { CLOCK_SKEW_MS } from "./live-nodes.ts";
import { deriveKey } from "./signed-record.ts";

/** Header carrying the credential on forwarded data-plane requests and control calls. */
export { PEER_HEADER };

const CONTROL =
  /^c2~([A-Za-z0-9._-]{1,63})~([A-Za-z0-9._-]{1,63})~(\d{1,16})~([A-Za-z0-9_-]{22})~([A-Za-z0-9_-]{43})$/;
const DATA =
  /^d3~([A-Za-z0-9._-]{1,63})~([A-Za-z0-9._-]{1,63})~(\d{1,16})~([A-Za-z0-9_-]{22})~([A-Za-z0-9_-]{43})$/;

const RELAY =
  /^r1~([A-Za-z0-9._-]{1,63})~([A-Za-z0-9._-]{1,63})~(\d{1,16})~([A-Za-z0-9_-]{22})~([0-9A-Fa-f:.]{2,45})~([A-Za-z0-9_-]{43})$/;

/** A relay credential's longest form (RELAY's bounds), for readers that must bound a preamble. */
export const RELAY_CREDENTIAL_MAX = 2 + 1 + 63 + 1 + 63 + 1 + 16 + 1 + 22 + 1 + 45 + 1 + 43;

/** A relay credential that verified: who sent it, for which client address. */
export interface RelayVouch {
  node: string;
  client: string;
}

/** SHA-256 of a request body, as bound into a control credential. */
export function bodyDigest(body: Uint8Array): string {
  return createHash("sha256").update(body).digest("base64url");
}

export class PeerAuth {
  readonly #key: Buffer;
  /** Nonces of control credentials already used → when they leave the window (ms). */
  readonly #nonces = new Map<string, number>();
  /** The data-hop credential each incoming connection was opened with, and its node. */
  readonly #connections = new WeakMap<object, { credential: string; node: string }>();

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
    if (!equal(mac!, want) || !this.#spend(nonce!, at, now)) return undefined;
    return node;
  }

  /** A handshake credential for one new data-plane connection to `target`. */
  connection(target: string, now = Date.now()): string {
    const nonce = randomBytes(16).toString("base64url");
    const mac = this.#mac(["data", this.node, target, now, nonce]);
    return `d3~${this.node}~${target}~${now}~${nonce}~${mac}`;
  }

  /**
   * The forwarding node's name when `credential` is the one `connection` was opened with, or a
   * genuine, fresh one for this node whose nonce no connection has used (it then becomes
   * `connection`'s); else undefined.
   */
  verifyConnection(credential: string, connection: object, now = Date.now()): string | undefined {
    const bound = this.#connections.get(connection);
    if (bound !== undefined && bound.credential === credential) return bound.node;
    const m = DATA.exec(credential);
    if (!m) return undefined;
    const [, node, target, time, nonce, mac] = m as unknown as string[];
    const at = Number(time);
    if (target !== this.node || Math.abs(now - at) > CLOCK_SKEW_MS) return undefined;
    if (!equal(mac!, this.#mac(["data", node!, target, at, nonce!]))) return undefined;
    if (!this.#spend(nonce!, at, now)) return undefined;
    this.#connections.set(connection, { credential, node: node! });
    return node;
  }

  /** The credential of a relayed client connection (from `client`) to `target`. */
  relay(target: string, client: string, now = Date.now()): string {
    const nonce = randomBytes(16).toString("base64url");
    const mac = this.#mac(["relay", this.node, target, now, nonce, client]);
    return `r1~${this.node}~${target}~${now}~${nonce}~${client}~${mac}`;
  }

  /**
   * The sending node and the client address when `credential` is genuine, for this node, fresh
   * and its nonce unseen (it is then spent); else why not, for the refusal and the log.
   */
  verifyRelay(credential: string, now = Date.now()): RelayVouch | { error: string } {
    const m = RELAY.exec(credential);
    if (!m) return { error: "malformed" };
    const [, node, target, time, nonce, client, mac] = m as unknown as string[];
    const at = Number(time);
    if (!equal(mac!, this.#mac(["relay", node!, target!, at, nonce!, client!]))) {
      return { error: "not signed with this cluster's secret" };
    }
    if (target !== this.node) return { error: `for node ${target}, not this one` };
    if (Math.abs(now - at) > CLOCK_SKEW_MS) {
      return { error: `minted ${now - at} ms from now, outside ±${CLOCK_SKEW_MS} ms` };
    }
    if (!this.#spend(nonce!, at, now)) return { error: "already used (a replay)" };
    return { node: node!, client: client! };
  }

  /** False when `nonce` was used already; else records it until it leaves the window. */
  #spend(nonce: string, at: number, now: number): boolean {
    this.#sweep(this.#nonces, now, (until) => until);
    if (this.#nonces.has(nonce)) return false;
    this.#nonces.set(nonce, at + CLOCK_SKEW_MS);
    return true;
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
