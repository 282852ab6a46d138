// Singleflight alone: one start per key however many join, each caller's own deadline and
// signal, and the flight's signal aborting only when its last caller has given up.
import { describe, expect, it } from "vitest";
import { isHerdError } from "../core/index.ts";
import { Singleflight } from "./singleflight.ts";

const LONG = 60_000;

/** A flight that settles when the spec says so, and shows its abort signal. */
function pending() {
  let settle!: (value: string) => void;
  let signal: AbortSignal | undefined;
  let starts = 0;
  const start = (s: AbortSignal) => {
    starts++;
    signal = s;
    return new Promise<string>((resolve, reject) => {
      settle = resolve;
      s.addEventListener("abort", () => reject(s.reason), { once: true });
    });
  };
  return {
    start,
    settle: (v: string) => settle(v),
    signal: () => signal!,
    starts: () => starts,
  };
}

const timedOut = () => new Error("timed out");

describe("Singleflight", () => {
  it("starts one flight for concurrent joins of a key, and forgets it once settled", async () => {
    const flights = new Singleflight<string>();
    const f = pending();
    const joins = Array.from({ length: 20 }, () =>
      flights.join("a", f.start, { waitMs: LONG, timedOut }),
    );
    expect(f.starts()).toBe(1);
    expect(flights.has("a")).toBe(true);
    f.settle("w-1");
    expect(await Promise.all(joins)).toEqual(Array(20).fill("w-1"));
    expect(flights.has("a")).toBe(false);
  });

  it("lets one caller give up without touching the others; the flight aborts with the last", async () => {
    const flights = new Singleflight<string>();
    const f = pending();
    const cancel = new AbortController();
    const quitter = flights
      .join("a", f.start, { waitMs: LONG, signal: cancel.signal, timedOut })
      .catch((e: unknown) => e);
    const impatient = flights.join("a", f.start, { waitMs: 10, timedOut }).catch((e: unknown) => e);
    const stayer = flights.join("a", f.start, { waitMs: LONG, timedOut });
    cancel.abort();
    expect(isHerdError(await quitter, "cancelled")).toBe(true);
    expect(String(await impatient)).toContain("timed out");
    expect(f.signal().aborted).toBe(false); // the stayer still waits
    f.settle("w-1");
    expect(await stayer).toBe("w-1");

    const g = pending();
    const last = flights.join("b", g.start, { waitMs: 10, timedOut }).catch((e: unknown) => e);
    expect(String(await last)).toContain("timed out");
    expect(g.signal().aborted).toBe(true);
  });

  it("refuses a caller whose signal has already aborted, without waiting", async () => {
    const flights = new Singleflight<string>();
    const f = pending();
    const error = await flights
      .join("a", f.start, { waitMs: LONG, signal: AbortSignal.abort(), timedOut })
      .catch((e: unknown) => e);
    expect(isHerdError(error, "cancelled")).toBe(true);
    expect(f.signal().aborted).toBe(true);
  });
});
