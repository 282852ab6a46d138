// What herd writes to Redis, made so that a reader or writer of Redis without the cluster
// secret can neither learn a session's token nor plant a record a node will act on: every
// record that carries an address, a node's pools or a session's owner is signed, and each
// session's token is encrypted. Keys are derived from the cluster secret (HKDF-SHA256, one per
// use), so the record keys never sign a node-to-node credential and the reverse.
//
//   signed:  `h1.<mac>.<json>`, mac = base64url HMAC-SHA256(record key, kind NUL json)
//   token:   `t1.<iv>.<ciphertext+tag>`, AES-256-GCM, the session id as additional data (a
//            sealed token moved onto another session's record does not open)
//
// The kind ("node", "session", "event") is under the MAC, so a genuine record of one kind is
// never accepted as another. Pure apart from the random IVs; no state.

import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  hkdfSync,
  randomBytes,
  timingSafeEqual,
} from "node:crypto";

export type RecordKind = "node" | "session" | "event";

const MAC_CHARS = 43; // base64url of 32 bytes

/** A 32-byte key for one use (`info`) of the cluster secret. */
export function deriveKey(secret: string, info: string): Buffer {
  return Buffer.from(hkdfSync("sha256", secret, "herd-cluster", info, 32));
}

export class RecordKeys {
  readonly #mac: Buffer;
  readonly #token: Buffer;

  constructor(secret: string) {
    this.#mac = deriveKey(secret, "redis records v1");
    this.#token = deriveKey(secret, "session tokens v1");
  }

  sign(kind: RecordKind, json: string): string {
    return `h1.${this.#macOf(kind, json)}.${json}`;
  }

  /** The JSON of a genuine record of this kind, else undefined (unsigned, forged, altered). */
  verify(kind: RecordKind, signed: string): string | undefined {
    if (!signed.startsWith("h1.") || signed.charCodeAt(3 + MAC_CHARS) !== 46) return undefined;
    const mac = signed.slice(3, 3 + MAC_CHARS);
    const json = signed.slice(4 + MAC_CHARS);
    return timingSafeEqual(Buffer.from(mac), Buffer.from(this.#macOf(kind, json)))
      ? json
      : undefined;
  }

  sealToken(sessionId: string, token: string): string {
    const iv = randomBytes(12);
    const c = createCipheriv("aes-256-gcm", this.#token, iv);
    c.setAAD(Buffer.from(sessionId));
    const body = Buffer.concat([c.update(token, "utf8"), c.final(), c.getAuthTag()]);
    return `t1.${iv.toString("base64url")}.${body.toString("base64url")}`;
  }

  /** The token, or undefined when `sealed` was not sealed for this session with this secret. */
  openToken(sessionId: string, sealed: string): string | undefined {
    const m = /^t1\.([A-Za-z0-9_-]{16})\.([A-Za-z0-9_-]{22,})$/.exec(sealed);
    if (!m) return undefined;
    const body = Buffer.from(m[2]!, "base64url");
    if (body.length < 16) return undefined;
    try {
      const d = createDecipheriv("aes-256-gcm", this.#token, Buffer.from(m[1]!, "base64url"));
      d.setAAD(Buffer.from(sessionId));
      d.setAuthTag(body.subarray(body.length - 16));
      return Buffer.concat([d.update(body.subarray(0, body.length - 16)), d.final()]).toString(
        "utf8",
      );
    } catch {
      return undefined;
    }
  }

  #macOf(kind: RecordKind, json: string): string {
    return createHmac("sha256", this.#mac).update(`${kind}\0${json}`).digest("base64url");
  }
}
