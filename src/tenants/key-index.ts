// Which caller a key belongs to, in time that does not depend on the key: the key is hashed
// (SHA-256) and the digest looked up, so how long an answer takes tells a guesser nothing about
// how close the guess came to any key, and it costs the same with 1 tenant or 1,000. The match
// is then confirmed with timingSafeEqual on the digests. Immutable once built.

import { createHash, timingSafeEqual } from "node:crypto";
import type { Caller } from "../core/index.ts";

function digest(key: string): Buffer {
  return createHash("sha256").update(key, "utf8").digest();
}

export class KeyIndex {
  readonly #byDigest = new Map<string, { digest: Buffer; caller: Caller }>();

  /** `keys` must be distinct (the config checks it). */
  constructor(keys: Iterable<[key: string, caller: Caller]>) {
    for (const [key, caller] of keys) {
      const d = digest(key);
      this.#byDigest.set(d.toString("base64"), { digest: d, caller });
    }
  }

  identify(key: string): Caller | undefined {
    const d = digest(key);
    const entry = this.#byDigest.get(d.toString("base64"));
    return entry !== undefined && timingSafeEqual(entry.digest, d) ? entry.caller : undefined;
  }
}
