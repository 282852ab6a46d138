// The bytes of HTTP/1 syntax, for the strict parsers of this folder and for the header rules
// that work on scanned heads: which byte may stand where (tables indexed by byte value), and
// field names compared on the bytes without decoding them.
//
// Invariant: the tables are built once at load and never written again; the comparisons fold
// ASCII letters only. Pure; no state.
//
// The parsers' per-byte loops bind these to module-local names (`const { TCHAR } = bytes`):
// read through an import binding, in modules run unbundled (tsx: bench/ and the tests run the
// sources), each read costs a cell load and a TDZ check, about a third of a head's scan.

export const CR = 0x0d;
export const LF = 0x0a;
export const SP = 0x20;
export const HTAB = 0x09;
export const COLON = 0x3a;
export const COMMA = 0x2c;
export const SEMI = 0x3b;
export const EQUALS = 0x3d;
export const DQUOTE = 0x22;
export const BACKSLASH = 0x5c;

function table(chars: string, ranges: [number, number][] = []): Uint8Array {
  const t = new Uint8Array(256);
  for (let i = 0; i < chars.length; i++) t[chars.charCodeAt(i)] = 1;
  for (const [lo, hi] of ranges) t.fill(1, lo, hi + 1);
  return t;
}

const ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/** tchar (RFC 9110 §5.6.2): header names, methods, list tokens, chunk-extension names. */
export const TCHAR = table(`!#$%&'*+-.^_\`|~${ALNUM}`);
/** Field-value bytes llhttp accepts: HTAB, SP, VCHAR, obs-text (no other CTL, no DEL). */
export const FIELD = table("\t", [
  [0x20, 0x7e],
  [0x80, 0xff],
]);
/** Origin-form target bytes: llhttp's strict URL characters plus '?'. No '#' (a fragment never
 *  belongs in a request), no HTAB/FF/obs-text (llhttp's lenient extras). */
export const TARGET = table(`!"$%&'()*+,-./:;<=>@[\\]^_\`{|}~?${ALNUM}`);
/** qdtext and the second byte of a quoted-pair in a chunk extension's quoted value. */
export const QDTEXT = table("\t !", [
  [0x23, 0x5b],
  [0x5d, 0x7e],
  [0x80, 0xff],
]);
export const QPAIR = table("\t", [
  [0x20, 0x7e],
  [0x80, 0xff],
]);
export const HEX = new Int8Array(256).fill(-1);
for (let i = 0; i < 16; i++) {
  HEX[i.toString(16).charCodeAt(0)] = i;
  HEX[i.toString(16).toUpperCase().charCodeAt(0)] = i;
}

/** True when buf[s..e) equals `lower` ignoring ASCII case. Only for bytes already known to be
 *  tchar or field-value bytes: for those, `| 0x20` folds letters and nothing onto a letter,
 *  digit or '-'. */
export function equalsLower(buf: Buffer, s: number, e: number, lower: string): boolean {
  if (e - s !== lower.length) return false;
  for (let k = 0; k < lower.length; k++) {
    if ((buf[s + k]! | 0x20) !== lower.charCodeAt(k)) return false;
  }
  return true;
}

/** True when buf[s..e) equals `lower` (any tchar name, lower case) ignoring ASCII case. */
export function nameEquals(buf: Buffer, s: number, e: number, lower: string): boolean {
  if (e - s !== lower.length) return false;
  for (let k = 0; k < lower.length; k++) {
    const c = buf[s + k]!;
    const l = lower.charCodeAt(k);
    if (c !== l && !(c >= 0x41 && c <= 0x5a && c + 0x20 === l)) return false;
  }
  return true;
}
