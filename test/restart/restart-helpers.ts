// What the restart specs share: finding every herd daemon of a test (old and new generations
// alike) and waiting for a condition across a hand-over.

import { setTimeout as sleep } from "node:timers/promises";
import { cmdline, pidsWithTag } from "../helpers/processes.ts";

/** Every `herd serve` process carrying the test's leak tag: both sides of a restart. */
export function daemonPids(tag: string): number[] {
  return pidsWithTag(tag).filter((pid) => cmdline(pid).includes("bin/herd serve"));
}

/** Polls `probe` until it gives a value (not undefined, not false); fails after 90 s. */
export async function until<T>(
  what: string,
  probe: () => T | undefined | false | Promise<T | undefined | false>,
): Promise<T> {
  const deadline = Date.now() + 90_000;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}
