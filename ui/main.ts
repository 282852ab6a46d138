// The dashboard page (GET /ui/). Two loops share one herd.v1 client:
//  - the watch: WatchSessions, live. Before each (re)connect it asks GetStats for the daemon's
//    instance_id; same daemon -> resume with since_revision (nothing lost in the gap), new
//    daemon or history gone (OUT_OF_RANGE) -> a fresh snapshot. It retries with backoff and
//    says on the page that it is reconnecting, and when it is back.
//  - the poll: GetStats and ListSessions every POLL_MS, for the numbers events do not carry
//    (idle/starting workers, node memory/CPU/load, last activity); a pool or session event
//    also fetches GetStats within STATS_SOON_MS, so pool numbers keep up with the events.
// After every snapshot a one-off replay of the retained history fills in what happened before
// (backfill). UNAUTHENTICATED from either loop stops both and asks for a token; entering one
// starts them again. Rendering is coalesced into one pass per tick. All state lives in this tab's memory.

import { type GetStatsResponse, SessionEventType } from "../gen/herd/v1/herd_pb.ts";
import { Code, controlPlaneUrl, errorCode, errorText, herdClient, setToken } from "./api.ts";
import { byId, el } from "./dom.ts";
import { clock } from "./format.ts";
import { historyKey, renderNodes } from "./nodes-view.ts";
import { SessionBook } from "./session-book.ts";
import { renderDetail } from "./session-detail.ts";
import { SessionLogTail } from "./session-logs.ts";
import { type Filters, SessionsView } from "./sessions-view.ts";
import { StatsHistory } from "./stats-history.ts";

const POLL_MS = 2000;
const STATS_SOON_MS = 100;
const MAX_BACKOFF_MS = 4000;

const client = herdClient(controlPlaneUrl(location.href));
const book = new SessionBook();
const output = new SessionLogTail(client);
const history = new StatsHistory();
/** Today the daemon that served the page; cluster mode will add one entry per node. */
const NODE = location.host;

const ui = {
  status: byId("status"),
  auth: byId("auth"),
  authReason: byId("auth-reason"),
  notice: byId("notice"),
  tokenForm: byId<HTMLFormElement>("token-form"),
  token: byId<HTMLInputElement>("token"),
  nodes: byId("node-list"),
  sessions: new SessionsView(byId<HTMLTableElement>("sessions").tBodies[0]!),
  count: byId("session-count"),
  detail: byId("detail"),
  filterText: byId<HTMLInputElement>("filter-text"),
  filterPool: byId<HTMLSelectElement>("filter-pool"),
  filterState: byId<HTMLSelectElement>("filter-state"),
};

let run: AbortController | undefined;
let stats: GetStatsResponse | undefined;
let selected: string | undefined;

function setStatus(state: string, text: string): void {
  ui.status.dataset.state = state;
  ui.status.textContent = text;
}

function notice(text: string, kind: "info" | "error" = "info"): void {
  ui.notice.hidden = false;
  ui.notice.dataset.kind = kind;
  ui.notice.textContent = text;
}

let pending = false;
function schedule(): void {
  if (pending) return;
  pending = true;
  setTimeout(render, 0);
}

function render(): void {
  pending = false;
  if (stats) renderNodes(ui.nodes, [{ name: NODE, stats }], history);
  const filters: Filters = {
    text: ui.filterText.value,
    pool: ui.filterPool.value,
    state: ui.filterState.value,
  };
  const shown = ui.sessions.render(book.rows.values(), filters, selected);
  ui.count.textContent = `${shown} shown · ${book.live().length} live`;
  const row = selected === undefined ? undefined : book.rows.get(selected);
  output.show(row?.id, row?.state === "live");
  renderDetail(ui.detail, row, output.view);
}

function showStats(s: GetStatsResponse): void {
  stats = s;
  const t = Date.now();
  for (const p of s.pools) {
    history.add(historyKey(NODE, p.name), { t, sessions: p.sessions, queued: p.queued });
  }
  const pools = s.pools.map((p) => p.name);
  const have = [...ui.filterPool.options].slice(1).map((o) => o.value);
  if (pools.join("\n") !== have.join("\n")) {
    const keep = ui.filterPool.value;
    ui.filterPool.replaceChildren(
      el("option", {}, "all pools"),
      ...pools.map((p) => el("option", {}, p)),
    );
    ui.filterPool.options[0]!.value = "";
    ui.filterPool.value = pools.includes(keep) ? keep : "";
  }
  schedule();
}

function needToken(err: unknown): void {
  run?.abort();
  setStatus("auth", "needs a token");
  ui.auth.hidden = false;
  ui.authReason.textContent = errorText(err);
  ui.token.focus();
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(t);
      resolve();
    });
  });

async function watchLoop(signal: AbortSignal): Promise<void> {
  let backoff = 250;
  let downSince: Date | undefined;
  while (!signal.aborted) {
    try {
      const s = await client.getStats({}, { signal });
      const before = book.instanceId;
      const resume = book.connect(s.instanceId);
      const restarted = before !== "" && before !== s.instanceId;
      showStats(s);
      const stream = client.watchSessions(
        // Connection events are opt-in: the page shows them in each session's history.
        resume
          ? { sinceRevision: book.revision, connectionEvents: true }
          : { snapshot: true, connectionEvents: true },
        {
          signal,
          onHeader: () => {
            backoff = 250;
            if (restarted) {
              notice(
                `The daemon restarted (${clock(new Date())}): the sessions it had before have ended.`,
              );
            }
            setStatus(
              "live",
              downSince
                ? `live · reconnected at ${clock(new Date())}${
                    resume
                      ? ", nothing missed"
                      : restarted
                        ? " to a restarted daemon"
                        : ", reloaded from a snapshot"
                  }`
                : "live",
            );
            downSince = undefined;
          },
        },
      );
      for await (const ev of stream) {
        if (book.apply(ev)) schedule();
        if (!CONNECTION_EVENTS.has(ev.type)) statsSoon(signal);
        if (ev.type === SessionEventType.SNAPSHOT_COMPLETE) void backfill(ev.revision, signal);
      }
      schedule();
      throw new Error("the watch stream ended");
    } catch (err) {
      if (signal.aborted) return;
      const code = errorCode(err);
      if (code === Code.Unauthenticated) return needToken(err);
      if (code === Code.OutOfRange) {
        book.forgetRevision();
        continue;
      }
      downSince ??= new Date();
      setStatus(
        "reconnecting",
        `disconnected since ${clock(downSince)}, reconnecting… (${errorText(err)})`,
      );
      await sleep(backoff, signal);
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
    }
  }
}

/**
 * After a snapshot, replays the daemon's retained history up to the snapshot's revision into
 * the book (SessionBook.backfill), so a page opened late shows sessions that already ended and
 * full histories. The daemon keeps a bounded history of unknown size: a start too old for it
 * (OUT_OF_RANGE) is retried with half the span, down to nothing.
 */
async function backfill(upTo: bigint, signal: AbortSignal): Promise<void> {
  for (let span = upTo - 1n; span > 0n; span /= 2n) {
    const call = new AbortController();
    const stop = () => call.abort();
    signal.addEventListener("abort", stop);
    try {
      const replay = client.watchSessions(
        { sinceRevision: upTo - span, connectionEvents: true },
        { signal: call.signal },
      );
      for await (const ev of replay) {
        if (ev.revision > upTo) break;
        if (book.backfill(ev)) schedule();
        if (ev.revision === upTo) break;
      }
      return;
    } catch (err) {
      if (signal.aborted || errorCode(err) !== Code.OutOfRange) return;
    } finally {
      signal.removeEventListener("abort", stop);
      call.abort();
    }
  }
}

const CONNECTION_EVENTS = new Set([
  SessionEventType.CONNECTION_OPENED,
  SessionEventType.CONNECTION_CLOSED,
]);
let statsTimer: ReturnType<typeof setTimeout> | undefined;

/** Pool numbers follow an event within STATS_SOON_MS instead of waiting for the next poll. */
function statsSoon(signal: AbortSignal): void {
  if (statsTimer !== undefined) return;
  statsTimer = setTimeout(() => {
    statsTimer = undefined;
    client.getStats({}, { signal }).then(
      (s) => {
        if (!signal.aborted) showStats(s);
      },
      () => {}, // the loops report failures
    );
  }, STATS_SOON_MS);
}

async function pollLoop(signal: AbortSignal): Promise<void> {
  while (!signal.aborted) {
    await sleep(POLL_MS, signal);
    if (signal.aborted) return;
    try {
      const [s, list] = await Promise.all([
        client.getStats({}, { signal }),
        client.listSessions({}, { signal }),
      ]);
      // A different daemon: the watch loop is about to notice and start over.
      if (s.instanceId === book.instanceId) book.refresh(list.sessions);
      showStats(s);
    } catch (err) {
      if (signal.aborted) return;
      if (errorCode(err) === Code.Unauthenticated) return needToken(err);
      // Unreachable daemon: the watch loop reports and retries.
    }
  }
}

function start(): void {
  run?.abort();
  run = new AbortController();
  setStatus("connecting", "connecting…");
  void watchLoop(run.signal);
  void pollLoop(run.signal);
}

async function release(id: string, kill: boolean): Promise<void> {
  try {
    await client.releaseSession({ sessionId: id, kill });
    notice(`${kill ? "Killed" : "Released"} session ${id}.`);
  } catch (err) {
    if (errorCode(err) === Code.Unauthenticated) needToken(err);
    notice(`Could not release ${id}: ${errorText(err)}`, "error");
  }
}

ui.tokenForm.addEventListener("submit", (e) => {
  e.preventDefault();
  setToken(ui.token.value);
  ui.token.value = "";
  ui.token.placeholder = "token set (in this tab's memory only)";
  ui.auth.hidden = true;
  start();
});

byId("sessions").addEventListener("click", (e) => {
  const target = e.target as Element;
  const id = target.closest<HTMLTableRowElement>("tr[data-id]")?.dataset.id;
  if (id === undefined) return;
  const action = target.closest<HTMLButtonElement>("button[data-action]")?.dataset.action;
  if (action) void release(id, action === "kill");
  else selected = selected === id ? undefined : id;
  schedule();
});

for (const f of [ui.filterText, ui.filterPool, ui.filterState]) {
  f.addEventListener("input", schedule);
}
setInterval(schedule, 1000);
start();
