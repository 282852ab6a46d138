// Differential tests of ChunkedFraming against llhttp (see request-head.spec.ts for how): fed
// a body split at every offset, it ends it where llhttp does, with llhttp reading the sentinel
// request right after; it refuses trailers llhttp would act on and oversized sizes.
import { describe, expect, it } from "vitest";
import {
  bytes,
  INTERESTING,
  insertAt,
  NEXT_REQUEST,
  prng,
  type Rng,
  replaceNth,
} from "../../../test/helpers/http1-cases.ts";
import { llhttp } from "../../../test/helpers/llhttp.ts";
import { ChunkedFraming } from "./chunked-framing.ts";

const CHUNKED_HEAD = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";

type Verdict = { used: number; done: boolean } | "invalid";

/** Feeds the body in pieces cut at `cuts`; the bytes used in total and whether it ended. */
function feedSplit(body: Buffer, cuts: number[]): Verdict {
  const framing = new ChunkedFraming();
  let used = 0;
  let from = 0;
  for (const to of [...cuts, body.length]) {
    const piece = body.subarray(from, to);
    const v = framing.feed(piece, 0);
    if (v === "invalid") return v;
    used += v.used;
    if (v.done) return { used, done: true };
    if (v.used !== piece.length) throw new Error(`used ${v.used} of ${piece.length} yet not done`);
    from = to;
  }
  return { used, done: false };
}

const PLAIN_TRAILERS = ["X-Checksum", "Expires", "x", "Connections"];
const ANY_TRAILERS = [
  ...PLAIN_TRAILERS,
  "Connection",
  "content-length",
  "Upgrade",
  "Transfer-Encoding",
];

function chunkedText(r: Rng, names: readonly string[] = PLAIN_TRAILERS): string {
  let out = "";
  const chunks = r.int(4);
  for (let k = 0; k < chunks; k++) {
    const size = 1 + r.int(r.pick([3, 20, 70]));
    let hex = size.toString(16);
    hex = r.next() < 0.2 ? hex.toUpperCase() : hex;
    if (r.next() < 0.1) hex = `000${hex}`;
    out += `${hex}${extension(r)}\r\n${"d".repeat(size)}\r\n`;
  }
  out += `${r.next() < 0.1 ? "000" : "0"}${extension(r)}\r\n`;
  const trailers = r.next() < 0.3 ? r.int(3) : 0;
  for (let k = 0; k < trailers; k++)
    out += `${r.pick(names)}: ${r.pick(["abc", "", " v ", "\xe4"])}\r\n`;
  return `${out}\r\n`;
}

function extension(r: Rng): string {
  if (r.next() < 0.7) return "";
  return r.pick([
    ";a",
    ";a=b",
    ';name="quoted value"',
    ';q="\\"x\\""',
    ";a=b;c",
    ";a=b;c=d",
    ";ext=1.0",
  ]);
}

const CHUNK_MUTATIONS: ((s: string, r: Rng) => string)[] = [
  (s, r) => replaceNth(s, "\r\n", r, "\n"),
  (s, r) => replaceNth(s, "\r\n", r, "\r"),
  (s, r) => replaceNth(s, "\r\n", r, r.pick([" \r\n", "\t\r\n", "\r\n "])),
  (s, r) => insertAt(s, r.int(s.length), r.pick(INTERESTING)),
  (s, r) => insertAt(s, 0, r.pick(["0x", "+", "-", " ", "00000000000000000", ";"])),
  (s, r) => s.replace(";", r.pick(["; ", " ;", ";;", ";=", ';"'])),
  (s, r) => s.replace("=", r.pick([" =", "= ", "==", '="'])),
  (s) => s.replace(/^[0-9a-fA-F]+/, "fffffffffffffffff"),
  (s) => s.replace(/^[0-9a-fA-F]+/, "20000000000000"),
  (s, r) => {
    const k = r.int(s.length);
    return s.slice(0, k) + s.slice(k + 1);
  },
  (s, r) =>
    s.replace(
      /\r\n\r\n$/,
      r.pick(["\r\nX : y\r\n\r\n", "\r\n y\r\n\r\n", "\r\nX\r\n\r\n", "\r\n:\r\n\r\n"]),
    ),
  (s) => `1\r\nab\r\n${s}`,
];

describe("ChunkedFraming", () => {
  it("finds the end of a chunked body with extensions and trailers", () => {
    const body = bytes('5;a=b;q="x \\" y"\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\nNEXT');
    expect(new ChunkedFraming().feed(body, 0)).toEqual({ used: body.length - 4, done: true });
    const framing = new ChunkedFraming();
    expect(framing.feed(body, 0)).toMatchObject({ done: true });
    expect(framing.feed(bytes("more"), 0)).toEqual({ used: 0, done: true });
  });

  it("refuses trailers llhttp would act on (Connection: close would end the connection)", () => {
    for (const name of ["Connection", "Content-Length", "transfer-encoding", "UPGRADE"]) {
      const body = bytes(`1\r\na\r\n0\r\n${name}: close\r\n\r\n`);
      expect(new ChunkedFraming().feed(body, 0), name).toBe("invalid");
      expect(feedSplit(body, [body.length - 12]), name).toBe("invalid");
    }
    const fine = bytes("1\r\na\r\n0\r\nConnections: close\r\nX-Upgrade: 1\r\n\r\n");
    expect(new ChunkedFraming().feed(fine, 0)).toEqual({ used: fine.length, done: true });
  });

  it("refuses sizes past 16 hex digits or a safe integer, and stays refused", () => {
    expect(new ChunkedFraming().feed(bytes("00000000000000001\r\n"), 0)).toBe("invalid");
    expect(new ChunkedFraming().feed(bytes("20000000000000\r\n"), 0)).toBe("invalid");
    expect(new ChunkedFraming().feed(bytes("1fffffffffffff\r\n"), 0)).toEqual({
      used: 16,
      done: false,
    });
    const framing = new ChunkedFraming();
    expect(framing.feed(bytes("5 \r\n"), 0)).toBe("invalid");
    expect(framing.feed(bytes("0\r\n\r\n"), 0)).toBe("invalid");
  });

  it("differential fuzz, split at every offset: agrees with llhttp on where the body ends", () => {
    const r = prng(0xc4);
    const cases = 1500;
    let done = 0;
    let invalidButLl = 0;
    for (let n = 0; n < cases; n++) {
      const base = chunkedText(r, ANY_TRAILERS);
      const text = r.next() < 0.4 ? base : r.pick(CHUNK_MUTATIONS)(base, r);
      const body = bytes(text);
      const whole = feedSplit(body, []);
      for (let k = 1; k < body.length; k++) {
        expect(feedSplit(body, [k]), `${JSON.stringify(text)} split at ${k}`).toEqual(whole);
      }
      const ll = llhttp("request", bytes(CHUNKED_HEAD + text + NEXT_REQUEST));
      const context = JSON.stringify(text);
      if (whole === "invalid") {
        if (ll.error === undefined && ll.messages[0]?.complete) invalidButLl++;
        continue;
      }
      if (!whole.done) {
        expect(ll.messages[0]?.complete, context).toBe(false);
        continue;
      }
      done++;
      // Ours ends the body at `used`: llhttp must too, and read the sentinel right after it.
      const exact = llhttp(
        "request",
        bytes(CHUNKED_HEAD + text.slice(0, whole.used) + NEXT_REQUEST),
      );
      expect(exact.error, context).toBeUndefined();
      expect(
        exact.messages.map((m) => [m.url, m.complete]),
        context,
      ).toEqual([
        ["/", true],
        ["/next", true],
      ]);
    }
    // Every unmutated body is one llhttp accepts; most of them must end with us too.
    expect(done).toBeGreaterThan(cases / 3);
    console.log(`chunked: ${cases} cases, ${done} ended, invalid ${invalidButLl} llhttp took`);
  });

  it("ends every well-formed body fed byte by byte, or from an offset", () => {
    const r = prng(7);
    for (let n = 0; n < 200; n++) {
      const text = chunkedText(r);
      const body = bytes(text);
      const everyByte = [...Array(body.length).keys()].slice(1);
      expect(feedSplit(body, everyByte), JSON.stringify(text)).toEqual({
        used: body.length,
        done: true,
      });
      const shifted = bytes(`prefix${text}NEXT`);
      expect(new ChunkedFraming().feed(shifted, 6)).toEqual({ used: body.length, done: true });
    }
  });
});
