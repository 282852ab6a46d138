// What every benchmark returns, and the statistics they share. A row compares a herd figure
// with a baseline measured in the same run (direct to the worker, nginx, an ideal), so machine
// noise moves both sides alike; the ratio is value ÷ baseline.

import { readFileSync } from "node:fs";

export interface BenchRow {
  name: string;
  value: number;
  unit: string;
  baseline?: number;
  ratio?: number;
  /** The goal, in words, e.g. "≤ 5 ms". */
  goal?: string;
  /** Whether this run met the goal (rows with a goal only). */
  met?: boolean;
}

/** Reads the goal from its words: "≤ X", "≥ X" (on the value; on the ratio when the goal
 * says "ratio" or "×"; on value − baseline when it says "added"), so the words printed and
 * the check made cannot disagree. */
export function withVerdict(row: BenchRow): BenchRow {
  const m = /(≤|≥)\s*([\d.]+)/.exec(row.goal ?? "");
  if (!m) return row;
  const onRatio = /ratio|×/.test(row.goal!);
  const added = /added/.test(row.goal!);
  const x = added
    ? row.baseline === undefined
      ? undefined
      : row.value - row.baseline
    : onRatio
      ? row.ratio
      : row.value;
  if (x === undefined || Number.isNaN(x)) return row;
  const limit = Number(m[2]);
  return { ...row, met: m[1] === "≤" ? x <= limit : x >= limit };
}

export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index]!;
}

export const median = (samples: readonly number[]) => percentile(samples, 50);

export function round(n: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

export function compared(
  name: string,
  value: number,
  unit: string,
  baseline: number,
  goal?: string,
): BenchRow {
  return {
    name,
    value: round(value),
    unit,
    baseline: round(baseline),
    ratio: baseline === 0 ? Number.NaN : round(value / baseline, 3),
    ...(goal ? { goal } : {}),
  };
}

/** One load average (1 min) reading, printed beside figures taken on a shared machine. */
export function load1(): number {
  return Number(readFileSync("/proc/loadavg", "utf8").split(" ")[0]);
}

const verdict = (r: BenchRow) => (r.met === undefined ? "" : r.met ? "met" : "NOT MET");

export function formatTable(rows: readonly BenchRow[]): string {
  const header = ["benchmark", "value", "unit", "baseline", "ratio", "goal", ""];
  const body = rows.map((r) => [
    r.name,
    String(r.value),
    r.unit,
    r.baseline === undefined ? "" : String(r.baseline),
    r.ratio === undefined ? "" : String(r.ratio),
    r.goal ?? "",
    verdict(r),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join("  ")
      .trimEnd();
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...body.map(line)].join("\n");
}
