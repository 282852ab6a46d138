// The seeded case grammar the strict HTTP/1 parsers' differential specs share
// (src/dataplane/http1/*.spec.ts): a small PRNG, header-field lines built from values real and
// odd, the request-smuggling classics as mutations, and a body that fits a head's framing.
// Pure functions of their seed; no I/O.

import type { parseResponseHead } from "../../src/dataplane/index.ts";

type BodyFraming = Exclude<ReturnType<typeof parseResponseHead>, string>["body"];

export const MAX = 16 * 1024;
export const bytes = (s: string) => Buffer.from(s, "latin1");

/** mulberry32: small, seeded, good enough to spread cases. */
export function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  return { next, int, pick };
}
export type Rng = ReturnType<typeof prng>;

export const NEXT_REQUEST = "GET /next HTTP/1.1\r\nHost: sentinel\r\n\r\n";

/** Lengths beyond this get only this much body: llhttp must then still be inside it. */
const BODY_SAMPLE = 4096;

/** A body that fits the framing, so llhttp must end the message exactly after it (`whole`),
 *  or, for a long one, a part of it. */
export function bodyFor(framing: BodyFraming): { body: string; whole: boolean } {
  if (framing.kind === "length") {
    const whole = framing.length <= BODY_SAMPLE;
    return { body: "b".repeat(whole ? framing.length : BODY_SAMPLE), whole };
  }
  if (framing.kind === "chunked") return { body: "3\r\nabc\r\n0\r\n\r\n", whole: true };
  return { body: "", whole: true };
}

const CL_VALUES = [
  "0",
  "5",
  "27",
  "1048576",
  "+5",
  "-5",
  "0x5",
  "5,5",
  "5, 5",
  " 5 ",
  "\t5",
  "007",
  "00",
  "5 5",
  "",
  "99999999999999999999",
  "9007199254740991",
  "9007199254740992",
  "1e3",
  "5\x0b",
];
const TE_VALUES = [
  "chunked",
  "Chunked",
  "CHUNKED",
  "chunked ,",
  "chunked, chunked",
  " chunked",
  "chunked\t",
  "xchunked",
  "chunkedx",
  "chunked, gzip",
  "gzip, chunked",
  "gzip",
  "identity",
  "",
  '"chunked"',
  "chunk",
  "\x0bchunked",
];
const CONNECTION_VALUES = [
  "keep-alive",
  "close",
  "Close",
  "KEEP-ALIVE",
  "Upgrade",
  "keep-alive, Upgrade",
  "upgrade,keep-alive",
  "close foo",
  "closed",
  "close,",
  ", close",
  "close , x",
  "x, close",
  "keep-alive, close",
  "keep-alive,",
  "",
  "te, close",
  "upgrade ,close",
  "closex",
  "xclose",
  "keep-alivex",
  "keep-alive-x",
  "upgradex",
  "close-",
  "cLoSe",
  "foo,upgrade",
  "foo ,  Upgrade",
  "keep-alive ,upgrade",
  "clos",
  "keep",
  "upgrade, keep-alive, te",
];

/** Mostly the usual value, sometimes any of the list (the first `usual` entries are usual). */
function mostly(r: Rng, values: readonly string[], usual: number): string {
  return r.next() < 0.7 ? values[r.int(usual)]! : r.pick(values);
}

export function fieldLines(r: Rng, others: [string, string[]][]): string[] {
  const lines: string[] = [];
  const extras = r.int(6);
  for (let k = 0; k < extras; k++) {
    const [name, values] = r.next() < 0.8 ? others[r.int(6)]! : r.pick(others);
    lines.push(`${name}: ${r.pick(values)}`);
  }
  if (r.next() < 0.4) lines.push(`Connection: ${mostly(r, CONNECTION_VALUES, 6)}`);
  if (r.next() < 0.35) lines.push(`Content-Length: ${mostly(r, CL_VALUES, 4)}`);
  else if (r.next() < 0.3) lines.push(`Transfer-Encoding: ${mostly(r, TE_VALUES, 2)}`);
  else if (r.next() < 0.05) {
    lines.push(`Transfer-Encoding: ${r.pick(TE_VALUES)}`, `Content-Length: ${r.pick(CL_VALUES)}`);
  }
  return lines;
}

export const INTERESTING = [
  "\0",
  "\t",
  "\x0b",
  "\x0c",
  "\x7f",
  "\x80",
  "\xff",
  " ",
  ":",
  ",",
  ";",
  '"',
  "\r",
  "\n",
];

/** Smuggling classics and plain damage, applied to a whole message. */
const MUTATIONS: ((s: string, r: Rng) => string)[] = [
  // bare LF / bare CR instead of one CRLF
  (s, r) => replaceNth(s, "\r\n", r, "\n"),
  (s, r) => replaceNth(s, "\r\n", r, "\r"),
  // NUL or another odd byte anywhere
  (s, r) => insertAt(s, r.int(s.length), r.pick(INTERESTING)),
  (s, r) => insertAt(s, r.int(s.length), "\0"),
  // whitespace before a colon (name : value) and around the name
  (s, r) => replaceNth(s, ":", r, r.pick([" :", "\t:", ": "])),
  // obs-fold: a continuation line
  (s, r) => replaceNth(s, "\r\n", r, r.pick(["\r\n ", "\r\n\t"])),
  // a duplicated header line
  (s, r) => {
    const lines = s.split("\r\n");
    if (lines.length < 4) return s;
    const k = 1 + r.int(lines.length - 3);
    lines.splice(k, 0, lines[k]!);
    return lines.join("\r\n");
  },
  // CL.TE and TE.CL
  (s) => s.replace("\r\n", "\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n"),
  (s) => s.replace("\r\n", "\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n"),
  // TE obfuscations
  (s, r) =>
    s.replace(
      "\r\n",
      `\r\nTransfer-Encoding:${r.pick(["\tchunked", "chunked", "  chunked "])}\r\n`,
    ),
  (s, r) =>
    s.replace(
      "\r\n",
      `\r\n${r.pick(["Transfer-Encoding ", "Transfer_Encoding", "Transfer-Encoding\t", " Transfer-Encoding"])}: chunked\r\n`,
    ),
  // duplicate / odd Content-Length
  (s, r) =>
    s.replace(
      "\r\n",
      `\r\nContent-Length: ${r.pick(CL_VALUES)}\r\nContent-Length: ${r.pick(CL_VALUES)}\r\n`,
    ),
  // case games
  (s) => s.toLowerCase(),
  (s) => s.toUpperCase(),
  // leading empty lines, a trailing garbage byte before the end
  (s, r) => r.pick(["\r\n", "\n", " ", "\r\n\r\n"]) + s,
  // a byte deleted
  (s, r) => {
    const k = r.int(s.length);
    return s.slice(0, k) + s.slice(k + 1);
  },
  // a huge header (beyond 16 KiB) or many headers
  (s, r) => s.replace("\r\n", `\r\nX-Big: ${"x".repeat(r.pick([100, 8000, MAX + 10]))}\r\n`),
  (s) => s.replace("\r\n", `\r\n${"X-Many: 1\r\n".repeat(300)}`),
  // Connection games
  (s, r) => s.replace("\r\n", `\r\nConnection: ${r.pick(CONNECTION_VALUES)}\r\n`),
  // a header without a colon; an empty name
  (s) => s.replace("\r\n", "\r\nNoColon\r\n"),
  (s) => s.replace("\r\n", "\r\n: empty-name\r\n"),
  // space in the request line
  (s) => s.replace(" ", "  "),
  (s) => s.replace(" HTTP", "x y HTTP"),
];

export function replaceNth(s: string, needle: string, r: Rng, by: string): string {
  const hits: number[] = [];
  for (let i = s.indexOf(needle); i >= 0; i = s.indexOf(needle, i + 1)) hits.push(i);
  if (hits.length === 0) return s;
  const at = r.pick(hits);
  return s.slice(0, at) + by + s.slice(at + needle.length);
}

export function insertAt(s: string, at: number, what: string): string {
  return s.slice(0, at) + what + s.slice(at);
}

export function mutate(s: string, r: Rng): string {
  const n = r.next() < 0.5 ? 0 : 1 + r.int(3);
  let out = s;
  for (let k = 0; k < n; k++) out = r.pick(MUTATIONS)(out, r);
  return out;
}
