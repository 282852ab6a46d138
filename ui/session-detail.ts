// One session in full: its fields, how it ended (for a lost one: exit code, signal, OOM and
// the worker's stderr tail) and its event history, newest last.

import type { WorkerExit } from "../gen/herd/v1/herd_pb.ts";
import { el } from "./dom.ts";
import { clock } from "./format.ts";
import type { SessionRow } from "./session-book.ts";
import { stateText } from "./sessions-view.ts";

export function exitText(exit: WorkerExit): string {
  const parts = [
    exit.exitCode !== undefined ? `exit code ${exit.exitCode}` : "",
    exit.signal ? `signal ${exit.signal}` : "",
    exit.oom ? "killed by the OOM killer" : "",
  ];
  return parts.filter(Boolean).join(", ") || "no exit status";
}

/** `output`: the session's worker output (session-logs.ts), shown when it has any or is live. */
export function renderDetail(
  into: HTMLElement,
  row: SessionRow | undefined,
  output?: HTMLElement,
): void {
  if (!row) {
    into.hidden = true;
    into.replaceChildren();
    return;
  }
  into.hidden = false;
  const fact = (k: string, v: string) => el("div", {}, el("dt", {}, k), el("dd", {}, v));
  const labels = Object.entries(row.labels).map(([k, v]) => `${k}=${v}`);
  const ended =
    row.state === "live"
      ? []
      : [
          el("h4", {}, "How it ended"),
          el(
            "dl",
            { class: "end" },
            fact("state", stateText(row)),
            fact("ended at", clock(row.endedAt)),
            row.exit ? fact("worker exit", exitText(row.exit)) : null,
            row.exit ? fact("OOM", row.exit.oom ? "yes" : "no") : null,
          ),
          row.exit && row.exit.stderrTail.length > 0
            ? el(
                "pre",
                { class: "stderr", title: "last lines of the worker's stderr" },
                row.exit.stderrTail.join("\n"),
              )
            : null,
        ];
  const history = row.history.map((h) =>
    el(
      "li",
      {},
      el("span", { class: "time" }, clock(h.time)),
      " ",
      el("span", { class: "type" }, h.type),
      h.reason ? ` — ${h.reason}` : "",
      h.exit ? ` (${exitText(h.exit)})` : "",
    ),
  );
  into.replaceChildren(
    el("h3", {}, "Session ", el("code", {}, row.id)),
    el(
      "dl",
      {},
      fact("pool", row.pool),
      fact("worker", `${row.workerId} (pid ${row.workerPid})`),
      fact("created", clock(row.createdAt)),
      fact("labels", labels.join(" ") || "none"),
    ),
    ...ended.filter((n) => n !== null),
    ...(output && (row.state === "live" || output.textContent)
      ? [el("h4", {}, "Output"), output]
      : []),
    el("h4", {}, "Events"),
    history.length > 0
      ? el("ol", { class: "history" }, ...history)
      : el("p", {}, "none seen since the page opened"),
  );
}
