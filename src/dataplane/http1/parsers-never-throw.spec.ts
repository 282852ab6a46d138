// The hot path's parsers meet any bytes a client or worker sends: each answers with one of its
// verdicts, at any offset and limit, and never throws.
import { describe, expect, it } from "vitest";
import { bytes, MAX, prng } from "../../../test/helpers/http1-cases.ts";
import { ChunkedFraming } from "./chunked-framing.ts";
import { parseRequestHead } from "./request-head.ts";
import { parseResponseHead } from "./response-head.ts";

describe("never throws", () => {
  it("answers any bytes at any offset with one of its verdicts", () => {
    const r = prng(0xbad);
    const alphabet = bytes('GET HTTP/1.1\r\n:;="\\ \t\0\x7f\xff0123456789abcdefABCDEF,-/');
    for (let n = 0; n < 3000; n++) {
      const buf = Buffer.alloc(r.int(80));
      for (let k = 0; k < buf.length; k++) buf[k] = alphabet[r.int(alphabet.length)]!;
      const start = r.int(buf.length + 4) - 2;
      const max = r.pick([0, 1, 10, 64, MAX]);
      const req = parseRequestHead(buf, start, max);
      expect(typeof req === "object" || ["incomplete", "decline", "too-large"].includes(req)).toBe(
        true,
      );
      const res = parseResponseHead(buf, start, max, r.pick(["GET", "HEAD", "CONNECT", ""]));
      expect(typeof res === "object" || ["incomplete", "invalid", "too-large"].includes(res)).toBe(
        true,
      );
      const framing = new ChunkedFraming();
      const v = framing.feed(buf, start);
      if (v !== "invalid") expect(v.used).toBeLessThanOrEqual(Math.max(0, buf.length - start));
    }
  });
});
