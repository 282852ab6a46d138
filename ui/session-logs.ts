// The selected live session's worker output, followed through TailSessionLogs for as long as
// the session is selected (the daemon ends the stream when the session ends). A worker's output
// is hostile: it is written as text only (textContent), and bounded to the last MAX_CHARS so a
// flooding worker cannot grow the tab.
//
// State: one followed session at a time; selecting another (or none) aborts the stream of the
// last. Single-threaded (the page's event loop).

import type { Herd } from "./api.ts";
import { errorText } from "./api.ts";
import { el } from "./dom.ts";

const MAX_CHARS = 64 * 1024;

export class SessionLogTail {
  /** Reused across renders, so the text survives the detail being rebuilt every tick. */
  readonly view = el("pre", {
    class: "logs",
    title: "the worker's stdout and stderr since this session began",
  });
  #id: string | undefined;
  #abort: AbortController | undefined;

  constructor(private readonly client: Herd) {}

  /**
   * Shows session `id` (undefined: none): follows its output when it is live, from the start of
   * the session; a no-op while `id` is already shown (an ended session keeps what was read).
   */
  show(id: string | undefined, live: boolean): void {
    if (id === this.#id) return;
    this.#abort?.abort();
    this.#abort = undefined;
    this.#id = id;
    this.view.textContent = "";
    if (id === undefined || !live) return;
    const abort = new AbortController();
    this.#abort = abort;
    void this.#read(id, abort.signal);
  }

  async #read(id: string, signal: AbortSignal): Promise<void> {
    const text = new TextDecoder();
    try {
      for await (const chunk of this.client.tailSessionLogs(
        { sessionId: id, follow: true },
        { signal },
      )) {
        this.#append(text.decode(chunk.data, { stream: true }));
      }
    } catch (err) {
      if (!signal.aborted) this.#append(`\n[output: ${errorText(err)}]\n`);
    }
  }

  #append(more: string): void {
    const all = (this.view.textContent ?? "") + more;
    this.view.textContent = all.length > MAX_CHARS ? all.slice(-MAX_CHARS) : all;
  }
}
