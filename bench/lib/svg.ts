// A dependency-free horizontal bar chart in SVG: one bar per row, from the first numeric column.

import type { Table } from "./report.ts";

const esc = (s: string) => s.replace(/[<>&"]/g, (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;" })[c]!);

/** A chart of the table's first numeric column by its first column, or undefined if nothing comparable to draw. */
export function barChart(t: Table, width = 640): string | undefined {
  if (t.columns[0] === "figure") return undefined; // rows of different units: no common axis
  const col = t.columns.findIndex((_, i) => i > 0 && t.rows.some((r) => typeof r[i] === "number"));
  if (col < 0 || t.rows.length < 2 || t.rows.length > 40) return undefined;
  const rows = t.rows.map((r) => ({ label: String(r[0]), value: typeof r[col] === "number" ? (r[col] as number) : 0 }));
  const max = Math.max(...rows.map((r) => r.value), 1e-9);
  const barH = 22;
  const labelW = 220;
  const h = 40 + rows.length * barH;
  const bars = rows
    .map((r, i) => {
      const y = 30 + i * barH;
      const w = Math.max(1, ((width - labelW - 90) * r.value) / max);
      return (
        `<text x="${labelW - 6}" y="${y + 15}" text-anchor="end">${esc(r.label.slice(0, 34))}</text>` +
        `<rect x="${labelW}" y="${y + 3}" width="${w.toFixed(1)}" height="${barH - 6}" fill="#3b7dd8"/>` +
        `<text x="${labelW + w + 5}" y="${y + 15}">${esc(r.value >= 100 ? Math.round(r.value).toLocaleString("en-US") : r.value.toFixed(2))}</text>`
      );
    })
    .join("");
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${h}" font-family="sans-serif" font-size="12">` +
    `<text x="8" y="18" font-weight="bold">${esc(t.title.slice(0, 90))} — ${esc(t.columns[col]!)}</text>${bars}</svg>`
  );
}
