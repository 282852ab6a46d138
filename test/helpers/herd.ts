// A Herd over the fixture worker, for pool-engine tests. Every worker carries the test's leak
// tag, and `cleanup` closes every Herd it started, then fails the test if any tagged process is
// still alive (after killing it, so one failure does not cascade).

import type { HerdEvent } from "../../src/core/index.ts";
import {
  Herd,
  type HerdOptions,
  type PoolOptionsInput,
  resolvePoolOptions,
} from "../../src/pool/index.ts";
import { expectNoLeaks, newLeakTag } from "./processes.ts";
import { WORKER_FIXTURE } from "./worker.ts";

export interface HerdFixture {
  tag: string;
  /** Pool options for the fixture worker, tagged; override anything. */
  pool(overrides?: Partial<PoolOptionsInput>): PoolOptionsInput;
  start(...pools: Partial<PoolOptionsInput>[]): Promise<Herd>;
  /** `start` with HerdOptions (tenants' weights, say). */
  startWith(opts: HerdOptions, ...pools: Partial<PoolOptionsInput>[]): Promise<Herd>;
  cleanup(): Promise<void>;
}

export function herdFixture(): HerdFixture {
  const { tag, env } = newLeakTag();
  const herds: Herd[] = [];
  const pool = (overrides: Partial<PoolOptionsInput> = {}): PoolOptionsInput => ({
    name: "w",
    command: [process.execPath, WORKER_FIXTURE],
    healthPath: "/health",
    healthIntervalMs: 200,
    ...overrides,
    env: { ...env, ...(overrides.env ?? {}) },
  });
  return {
    tag,
    pool,
    start(...pools) {
      return this.startWith({}, ...pools);
    },
    async startWith(opts, ...pools) {
      const herd = await Herd.start(
        (pools.length ? pools : [{}]).map((p) => resolvePoolOptions(pool(p))),
        opts,
      );
      herds.push(herd);
      return herd;
    },
    async cleanup() {
      await Promise.all(herds.splice(0).map((h) => h.close()));
      await expectNoLeaks(tag);
    },
  };
}

/** Collects events from a Herd until `stop()`. */
export function recordEvents(herd: Herd): { events: HerdEvent[]; stop(): void } {
  const sub = herd.subscribe({ bufferLimit: 100_000 });
  const events: HerdEvent[] = [];
  (async () => {
    for await (const e of sub) events.push(e);
  })().catch(() => {});
  return { events, stop: () => sub.close() };
}

/** Polls until `predicate` holds (or throws after `ms`, with `what` in the message). */
export async function eventually<T>(
  what: string,
  probe: () => T | Promise<T>,
  ms = 15_000, // an upper bound for a loaded CI machine; passing polls return at once
): Promise<NonNullable<T>> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export async function getJson<T = Record<string, unknown>>(
  address: string,
  path: string,
  init?: RequestInit,
): Promise<T> {
  const res = await fetch(`http://${address}${path}`, init);
  if (!res.ok) throw new Error(`${init?.method ?? "GET"} ${path} → ${res.status}`);
  return (await res.json()) as T;
}
