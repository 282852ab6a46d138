// Keeps `herd serve`'s start-up from inflating the idle daemon's memory. Start-up (about 1 MB
// of modules compiled, the config parsed and checked, the pools started) is one burst of work
// that V8 answers in two ways an idle daemon then pays for:
// - it doubles the young generation's semi-spaces for the burst's allocation, from 1 MiB up to
//   8 MiB here, and keeps those pages resident (about 4 MiB of RSS);
// - it optimizes the start-up's hot functions with TurboFan, which touches about 4 MiB of the
//   optimizing compiler's own code in the node binary (resident file pages), for functions
//   that never run again.
// Holding both during start-up (semi-space growth factor 1, TurboFan off) and restoring V8's
// defaults once the daemon is ready leaves the request paths to tier up and the young
// generation to grow under real load exactly as before; start-up itself measured no slower.
// V8 reads both flags at each scavenge and tiering decision. A flag the user set on the command
// line or in NODE_OPTIONS (or one that conflicts, like --jitless) is left alone: V8 flags
// cannot be read back, so "restore" could not otherwise mean the user's value.
// Only `herd serve` calls this, once, from the main thread, before the daemon's modules load.

import { setFlagsFromString } from "node:v8";

interface Hold {
  during: string;
  /** V8's default, restored after start-up. */
  after: string;
  /** Options (dashes or underscores) that make this hold the user's business, not ours. */
  userSet: RegExp;
}

const HOLDS: readonly Hold[] = [
  {
    during: "--semi-space-growth-factor=1",
    after: "--semi-space-growth-factor=2",
    userSet: /semi-space-growth-factor|lite-mode|optimize-for-size/,
  },
  {
    during: "--no-turbofan",
    after: "--turbofan",
    userSet: /turbofan|^--(no-?)?opt\b|jitless|lite-mode|always-opt|max-opt/,
  },
];

/** Applies the holds the user has not overridden; call the returned function once start-up is
 * over. `options` are the Node options in effect (execArgv and NODE_OPTIONS). */
export function limitStartUpFootprint(
  options: readonly string[] = [
    ...process.execArgv,
    ...(process.env.NODE_OPTIONS ?? "").split(/\s+/),
  ],
): () => void {
  const given = options.map((o) => o.replaceAll("_", "-"));
  const holds = HOLDS.filter((h) => !given.some((o) => h.userSet.test(o)));
  for (const h of holds) setFlagsFromString(h.during);
  return () => {
    for (const h of holds) setFlagsFromString(h.after);
  };
}
