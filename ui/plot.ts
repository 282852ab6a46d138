// A small SVG plot of one pool's sessions (solid) and queue depth (dashed) over the history
// window (at least a minute), scaled to the pool's max (or the highest value seen, if higher).

import { svg } from "./dom.ts";
import type { Sample } from "./stats-history.ts";

const W = 240;
const H = 48;

export function plot(samples: readonly Sample[], max: number, windowMs: number): SVGSVGElement {
  const now = samples.at(-1)?.t ?? Date.now();
  // A page open for less than the window plots what it has across the full width.
  const span = Math.min(windowMs, Math.max(60_000, now - (samples[0]?.t ?? now)));
  const top = Math.max(1, max, ...samples.map((s) => Math.max(s.sessions, s.queued)));
  const x = (t: number) => (W * (1 - (now - t) / span)).toFixed(1);
  const y = (v: number) => (H - 2 - ((H - 4) * v) / top).toFixed(1);
  const line = (pick: (s: Sample) => number, cls: string) =>
    svg("polyline", {
      class: cls,
      points: samples.map((s) => `${x(s.t)},${y(pick(s))}`).join(" "),
    });
  const label = `sessions and queue over the last ${Math.round(span / 1000)} s (top: ${top})`;
  return svg(
    "svg",
    { class: "plot", viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img" },
    svg("title", {}, document.createTextNode(label)),
    line((s) => s.sessions, "sessions"),
    line((s) => s.queued, "queued"),
  );
}
