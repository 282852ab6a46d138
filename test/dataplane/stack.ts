// A real herd (pool engine + fixture workers) behind a real data plane, for data-plane tests.
//
// Every worker carries the stack's leak tag; `stop()` closes the data plane, then herd, then
// proves that no tagged process survived (SIGKILLing and failing if one did). A stack belongs
// to one test, which must stop() it (use `afterEach(stopAll)` with `track`).
import {
  type DataPlane,
  type DataPlaneOptions,
  startDataPlane,
} from "../../src/dataplane/index.ts";
import { Herd, type PoolOptionsInput, resolvePoolOptions } from "../../src/pool/index.ts";
import { expectNoLeaks, killAllWithTag, newLeakTag, WORKER_FIXTURE } from "../helpers/index.ts";

export interface Stack {
  herd: Herd;
  dp: DataPlane;
  tag: string;
  url: string;
  stop(): Promise<void>;
}

export type PoolInput = Omit<PoolOptionsInput, "command" | "name"> & Partial<PoolOptionsInput>;

export async function startStack(
  pools: PoolInput[] = [{}],
  dataPlane: Partial<DataPlaneOptions> = {},
): Promise<Stack> {
  const { tag, env } = newLeakTag();
  const herd = await Herd.start(
    pools.map((p, i) =>
      resolvePoolOptions({
        name: `p${i}`,
        command: [process.execPath, WORKER_FIXTURE],
        max: 10,
        ...p,
        env: { ...p.env, ...env },
      }),
    ),
  );
  let dp: DataPlane;
  try {
    dp = await startDataPlane(herd, { listen: "127.0.0.1:0", ...dataPlane });
  } catch (err) {
    await herd.close();
    killAllWithTag(tag);
    throw err;
  }
  let stopped = false;
  return {
    herd,
    dp,
    tag,
    url: dp.url,
    async stop() {
      if (stopped) return;
      stopped = true;
      try {
        await dp.close();
        await herd.close();
      } finally {
        await expectNoLeaks(tag, { withinMs: 5000 });
      }
    },
  };
}

/** Collects stacks of a test file; call `stopAll` in afterEach. */
export function stackTracker(): { track(s: Stack): Stack; stopAll(): Promise<void> } {
  const live: Stack[] = [];
  return {
    track(s) {
      live.push(s);
      return s;
    },
    async stopAll() {
      const errors: unknown[] = [];
      for (const s of live.splice(0)) await s.stop().catch((err) => errors.push(err));
      if (errors.length > 0) throw errors[0];
    },
  };
}

export interface Whoami {
  pid: number;
  port: number;
  counter: number;
}

export async function whoami(url: string, init: RequestInit = {}): Promise<Whoami> {
  const res = await fetch(`${url}/whoami`, init);
  if (res.status !== 200) throw new Error(`whoami: ${res.status} ${await res.text()}`);
  return (await res.json()) as Whoami;
}
