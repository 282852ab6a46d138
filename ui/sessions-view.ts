// The session table: one row per session in the book (live, or ended and kept), filtered by
// text (id, pool, tenant, label keys and values), pool and state. The operator's sessions (no
// tenant) show "—" as their tenant. Rows are keyed by session id and
// updated in place, so a row's buttons survive the once-a-second refresh of its age.

import { el, setText } from "./dom.ts";
import { ago, clock } from "./format.ts";
import type { SessionRow } from "./session-book.ts";

export interface Filters {
  text: string;
  pool: string;
  /** "live", "ended" or "all" */
  state: string;
}

export function matches(row: SessionRow, f: Filters): boolean {
  if (f.pool && row.pool !== f.pool) return false;
  if (f.state === "live" && row.state !== "live") return false;
  if (f.state === "ended" && row.state === "live") return false;
  const q = f.text.trim().toLowerCase();
  if (!q) return true;
  const hay = [
    row.id,
    row.pool,
    row.tenant,
    ...Object.entries(row.labels).map(([k, v]) => `${k}=${v}`),
  ];
  return hay.some((h) => h.toLowerCase().includes(q));
}

export function stateText(row: SessionRow): string {
  return row.state === "live" ? "live" : row.reason ? `${row.state}: ${row.reason}` : row.state;
}

/** What the tenant column shows for the operator's sessions. */
export const OPERATOR = "—";

const COLUMNS = [
  "id",
  "pool",
  "tenant",
  "pid",
  "age",
  "active",
  "conns",
  "labels",
  "state",
] as const;

export class SessionsView {
  private readonly rows = new Map<string, HTMLTableRowElement>();

  constructor(private readonly tbody: HTMLTableSectionElement) {}

  render(all: Iterable<SessionRow>, filters: Filters, selected: string | undefined): number {
    const now = Date.now();
    const shown = [...all].filter((r) => matches(r, filters));
    shown.sort(
      (a, b) =>
        Number(b.state === "live") - Number(a.state === "live") ||
        (b.createdAt?.getTime() ?? 0) - (a.createdAt?.getTime() ?? 0),
    );
    const keep = new Set(shown.map((r) => r.id));
    for (const [id, tr] of this.rows) {
      if (!keep.has(id)) {
        tr.remove();
        this.rows.delete(id);
      }
    }
    shown.forEach((r, i) => {
      const tr = this.rows.get(r.id) ?? this.newRow(r.id);
      const cells = tr.cells;
      const text: Record<(typeof COLUMNS)[number], string> = {
        id: r.id,
        pool: r.pool,
        tenant: r.tenant || OPERATOR,
        pid: r.workerPid ? String(r.workerPid) : "",
        age: ago(r.createdAt, r.endedAt?.getTime() ?? now),
        active:
          r.state === "live" ? `${ago(r.lastActiveAt, now)} ago` : `ended ${clock(r.endedAt)}`,
        conns: String(r.connections),
        labels: Object.entries(r.labels)
          .map(([k, v]) => `${k}=${v}`)
          .join(" "),
        state: stateText(r),
      };
      COLUMNS.forEach((c, j) => {
        setText(cells[j]!, text[c]);
      });
      tr.dataset.state = r.state;
      tr.classList.toggle("selected", r.id === selected);
      for (const b of tr.querySelectorAll("button")) b.disabled = r.state !== "live";
      if (this.tbody.rows[i] !== tr) this.tbody.insertBefore(tr, this.tbody.rows[i] ?? null);
    });
    return shown.length;
  }

  private newRow(id: string): HTMLTableRowElement {
    const tr = el(
      "tr",
      { data: { id } },
      ...COLUMNS.map((c) => el("td", { class: c })),
      el(
        "td",
        { class: "actions" },
        el("button", { data: { action: "release" }, title: "ReleaseSession" }, "release"),
        el("button", { data: { action: "kill" }, title: "ReleaseSession with kill" }, "kill"),
      ),
    );
    this.rows.set(id, tr);
    return tr;
  }
}
