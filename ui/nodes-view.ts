// The fleet: one card per node (today the daemon that served the page; cluster mode adds a
// card per node, with the same pool rows), with its memory, CPU and load, and per pool the
// workers total/idle/busy/starting, sessions, queue depth, min/max and a plot of the recent
// sessions and queue.

import type { GetStatsResponse } from "../gen/herd/v1/herd_pb.ts";
import { el } from "./dom.ts";
import { bytes, percent } from "./format.ts";
import { plot } from "./plot.ts";
import type { StatsHistory } from "./stats-history.ts";

export interface NodeView {
  name: string;
  stats: GetStatsResponse;
}

export const historyKey = (node: string, pool: string) => `${node}/${pool}`;

export function renderNodes(into: HTMLElement, nodes: NodeView[], history: StatsHistory): void {
  into.replaceChildren(...nodes.map((n) => nodeCard(n, history)));
}

function nodeCard({ name, stats }: NodeView, history: StatsHistory): HTMLElement {
  const node = stats.node;
  const total = Number(node?.memoryTotalBytes ?? 0n);
  const used = total - Number(node?.memoryAvailableBytes ?? 0n);
  const facts = node
    ? [
        `memory ${bytes(used)} / ${bytes(total)} used`,
        `CPU ${percent(1 - node.cpuIdle)} busy`,
        `load ${node.load1.toFixed(2)}`,
      ]
    : [];
  const head = el(
    "tr",
    {},
    ...[
      "pool",
      "workers",
      "idle",
      "busy",
      "starting",
      "sessions",
      "queued",
      "min/max",
      "warm",
      "",
    ].map((h) => el("th", {}, h)),
  );
  const rows = stats.pools.map((p) =>
    el(
      "tr",
      { data: { pool: p.name } },
      el("td", { class: "name" }, p.name),
      ...[
        p.workersTotal,
        p.workersIdle,
        p.workersBusy,
        p.workersStarting,
        p.sessions,
        p.queued,
      ].map((v) => el("td", { class: "num" }, String(v))),
      el("td", { class: "num" }, `${p.min}/${p.max}`),
      // warm: auto's target; its reason (rate × boot) on hover.
      el(
        "td",
        {
          class: "num",
          title: `${p.arrivalRate.toFixed(2)} new sessions/s × boot ${p.bootTime ? `${Math.round(Number(p.bootTime.seconds) * 1000 + p.bootTime.nanos / 1e6)} ms` : "not measured yet"}`,
        },
        String(p.warmTarget),
      ),
      el(
        "td",
        { class: "plot-cell" },
        plot(history.get(historyKey(name, p.name)), p.max, history.windowMs),
      ),
    ),
  );
  return el(
    "article",
    { class: "node", data: { node: name } },
    el(
      "header",
      {},
      el("h3", {}, name),
      el("span", { class: "facts" }, facts.join(" · ")),
      el(
        "span",
        { class: "legend" },
        "plot: ",
        el("b", { class: "sessions" }, "sessions"),
        " ",
        el("b", { class: "queued" }, "queue"),
      ),
    ),
    el("table", { class: "pools" }, el("thead", {}, head), el("tbody", {}, ...rows)),
  );
}
