// Timers longer than Node can set. setTimeout takes at most 2^31-1 ms (24.8 days); beyond that
// Node warns (TimeoutOverflowWarning) and fires after 1 ms, which turned a 10,000-year RPC wait
// into an instant failure. A long timer re-arms in steps of at most MAX_TIMER_MS until its
// deadline. Config durations are refused above MAX_TIMER_MS instead (config check), so only
// per-request durations need this.
//
// Invariant: `fn` runs at most once, never before `ms` has passed, and never after `clear()`.
// Single-threaded; the handle holds the one pending Node timer.

/** The longest delay Node's setTimeout honours. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

export interface LongTimer {
  clear(): void;
}

export function setLongTimeout(
  fn: () => void,
  ms: number,
  opts: { ref?: boolean } = {},
): LongTimer {
  const deadline = Date.now() + ms;
  let timer: NodeJS.Timeout | undefined;
  let cleared = false;
  const arm = (delay: number) => {
    timer = setTimeout(
      () => {
        const left = deadline - Date.now();
        if (left > 0) arm(left);
        else if (!cleared) fn();
      },
      Math.min(Math.max(delay, 0), MAX_TIMER_MS),
    );
    if (opts.ref === false) timer.unref();
  };
  arm(Number.isFinite(ms) ? ms : MAX_TIMER_MS);
  return {
    clear() {
      cleared = true;
      clearTimeout(timer);
    },
  };
}
