// Durations as people write them in herd.yaml: Go-style strings ("15m", "1.5s", "200ms",
// "1h30m") or a plain number of seconds. Everything inside herd is milliseconds.

import { MAX_DURATION_TEXT, MAX_TIMER_MS } from "../pool/index.ts";

const UNIT_MS: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  μs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

const PART = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;

export const DURATION_HINT = 'use e.g. "15m", "1.5s", "200ms", "1h30m", or a number of seconds';

/** Milliseconds, or an error message saying what is wrong. */
export function parseDuration(value: string | number): { ms: number } | { error: string } {
  const r = parseUnbounded(value);
  // Every configured duration becomes a Node timer somewhere, and Node fires a longer one after
  // 1 ms: so a longer duration is an error here, not a silent "now" at run time.
  if ("ms" in r && r.ms > MAX_TIMER_MS) {
    return { error: `${JSON.stringify(value)} is too long: at most ${MAX_DURATION_TEXT}` };
  }
  return r;
}

function parseUnbounded(value: string | number): { ms: number } | { error: string } {
  if (typeof value === "number") {
    if (!Number.isFinite(value) || value < 0) {
      return { error: `${value} is not a duration: seconds must be a finite number ≥ 0` };
    }
    return { ms: Math.round(value * 1000) };
  }
  const text = value.trim();
  if (text === "0") return { ms: 0 };
  if (text === "") return { error: `an empty string is not a duration (${DURATION_HINT})` };
  let total = 0;
  PART.lastIndex = 0;
  while (PART.lastIndex < text.length) {
    const at = PART.lastIndex;
    const m = PART.exec(text);
    if (m === null || m.index !== at) {
      return { error: `${JSON.stringify(value)} is not a duration (${DURATION_HINT})` };
    }
    total += Number(m[1]) * UNIT_MS[m[2]!]!;
  }
  return { ms: Math.round(total) };
}
