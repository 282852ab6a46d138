export {
  type Captured,
  type CaptureOptions,
  type Exit,
  type Finished,
  runCaptured,
  spawnCaptured,
} from "./captured.ts";
export {
  CHROMIUM,
  CHROMIUM_LAUNCH,
  inlinePage,
  type LocalPage,
  serveLocalPage,
} from "./chromium.ts";
export {
  type Daemon,
  HERD_BIN,
  REPO_ROOT,
  type StartDaemonOptions,
  startDaemon,
} from "./daemon.ts";
export { freePort } from "./ports.ts";
export {
  cmdline,
  descendants,
  expectNoLeaks,
  killAllWithTag,
  LEAK_TAG_VAR,
  type LeakTag,
  newLeakTag,
  type ProcStat,
  pidAlive,
  pidsWithTag,
  procStat,
  waitForPidsGone,
  waitForTagGone,
} from "./processes.ts";
export {
  type FixtureWorker,
  type StartWorkerOptions,
  startWorker,
  WORKER_FIXTURE,
} from "./worker.ts";
