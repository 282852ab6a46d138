// A fresh `herd serve` around every test of the calling spec file, with its own leak tag: after
// each test the daemon must exit cleanly on SIGTERM (code 0) and leave no tagged process.

import { afterEach, beforeEach, expect } from "vitest";
import { type Daemon, type StartDaemonOptions, startDaemon } from "./daemon.ts";
import { expectNoLeaks, killAllWithTag, type LeakTag, newLeakTag } from "./processes.ts";

export interface DaemonPerTest {
  /** The current test's daemon. */
  readonly daemon: Daemon;
  /** The current test's leak tag (already in the daemon's environment). */
  readonly leak: LeakTag;
}

export function daemonPerTest(
  config: StartDaemonOptions["config"],
  /** `env` is merged under the test's leak tag. */
  opts: Omit<StartDaemonOptions, "config"> = {},
): DaemonPerTest {
  let leak: LeakTag | undefined;
  let daemon: Daemon | undefined;
  beforeEach(async () => {
    leak = newLeakTag();
    daemon = await startDaemon({ ...opts, config, env: { ...opts.env, ...leak.env } });
  });
  afterEach(async () => {
    const exit = await daemon?.stop();
    daemon = undefined;
    try {
      if (leak) await expectNoLeaks(leak.tag);
    } finally {
      if (leak) killAllWithTag(leak.tag);
    }
    expect(exit, "herd serve shuts down cleanly on SIGTERM").toEqual({ code: 0, signal: null });
  });
  return {
    get daemon() {
      if (!daemon) throw new Error("daemonPerTest: no daemon outside a test");
      return daemon;
    },
    get leak() {
      if (!leak) throw new Error("daemonPerTest: no leak tag outside a test");
      return leak;
    },
  };
}
