// What of a worker's exit text a client may be told. A worker's stderr is the operator's
// (events, logs): it may hold a previous tenant's bytes (`reuse: true`), so the pool marks where
// its quote begins and the planes cut there. Pure.

/** Where the pool's exit text (describeExit in src/pool/worker.ts) turns to the worker's stderr. */
export const STDERR_MARK = "; stderr: ";

/** `text` up to the first stderr quote the pool put in it: what a client may be told. */
export function withoutStderr(text: string): string {
  const at = text.indexOf(STDERR_MARK);
  return at < 0 ? text : `${text.slice(0, at)} (the worker's stderr is in herd's log and events)`;
}
