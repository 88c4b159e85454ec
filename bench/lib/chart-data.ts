// Turns a results table and a chart spec into what a grouped bar chart draws: groups of bars, one
// series per legend entry. Pure: no SVG here (bench/lib/svg.ts draws it), no files.

import type { ChartSpec, Table } from "./report.ts";

export interface ChartData {
  title: string;
  /** the value axis title */
  axis: string;
  /** the category axis title: the group columns' names */
  groupAxis: string;
  /** legend entries, in the order of the bars within a group */
  series: string[];
  /** each series' palette slot: its place among all the table's series, so a target keeps its colour
   * in a chart that leaves out one never measured (the backend's own CPU) */
  colors: number[];
  /** values[i] belongs to series[i]; null: not measured (drawn as "—") */
  groups: { label: string; values: (number | null)[] }[];
}

const num = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) ? v : null);

/** "64" under the column "conns" reads "64 conns"; words stay as they are. */
function part(value: unknown, column: string): string {
  const s = String(value ?? "");
  return /^[\d.,]+$/.test(s) ? `${s} ${column}` : s;
}

/** The data of one declared chart, or undefined when the table has nothing it can draw. */
export function chartData(t: Table, spec: ChartSpec): ChartData | undefined {
  const col = (name: string) => t.columns.indexOf(name);
  const valueCols = spec.values.map((name) => ({ name, i: col(name) })).filter((c) => c.i >= 0);
  const groupCols = spec.groupBy.map((name) => ({ name, i: col(name) })).filter((c) => c.i >= 0);
  const seriesCol = spec.seriesBy === undefined ? -1 : col(spec.seriesBy);
  if (valueCols.length === 0 || (spec.seriesBy !== undefined && seriesCol < 0)) return undefined;

  const groupLabel = (r: (string | number)[]) => groupCols.map((c) => part(r[c.i], c.name)).join(" · ") || t.title;
  // series keys: with seriesBy, each distinct value (× each value column when there are several)
  const seriesKey = (r: (string | number)[], v: { name: string }) =>
    seriesCol < 0 ? v.name : valueCols.length > 1 ? `${r[seriesCol]} ${v.name}` : String(r[seriesCol]);
  const series: string[] = [];
  const groups = new Map<string, Map<string, number | null>>();
  for (const r of t.rows) {
    const g = groupLabel(r);
    if (!groups.has(g)) groups.set(g, new Map());
    for (const v of valueCols) {
      const key = seriesKey(r, v);
      if (!series.includes(key)) series.push(key);
      groups.get(g)!.set(key, num(r[v.i]));
    }
  }
  // a series never measured (the backend's own CPU) would only be a row of dashes
  const drawn = series.filter((s) => [...groups.values()].some((m) => m.get(s) != null));
  if (drawn.length === 0) return undefined;
  return {
    title: spec.title ?? t.title,
    axis: spec.axis,
    groupAxis: groupCols.map((c) => c.name).join(" · "),
    series: drawn,
    colors: drawn.map((s) => series.indexOf(s)),
    groups: [...groups].map(([label, m]) => ({ label, values: drawn.map((s) => m.get(s) ?? null) })),
  };
}

/**
 * The charts of a table: the ones it declares, or, when it declares none, its first numeric column by
 * the text columns before it. A table of `figure | value` rows mixes units and gets none.
 */
export function tableCharts(t: Table): ChartData[] {
  if (t.charts) return t.charts.map((c) => chartData(t, c)).filter((c): c is ChartData => !!c);
  if (t.columns[0] === "figure" || t.rows.length < 2 || t.rows.length > 40) return [];
  const first = t.columns.findIndex((_, i) => i > 0 && t.rows.some((r) => num(r[i]) !== null));
  if (first < 0) return [];
  const labels = t.columns.slice(0, first).filter((_, i) => t.rows.every((r) => typeof r[i] === "string"));
  const c = chartData(t, { values: [t.columns[first]!], groupBy: labels.length ? labels : [t.columns[0]!], axis: t.columns[first]! });
  return c ? [c] : [];
}

/** The chart of a table of repeated measures (label | median | … | p99): both figures per measure. */
export function medianP99Chart(labelColumn: string, unit = "ms"): ChartSpec {
  return { values: ["median", "p99"], groupBy: [labelColumn], axis: `${unit}, median and p99 of the runs (lower is better)` };
}
