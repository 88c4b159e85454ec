// A dependency-free grouped horizontal bar chart in SVG: a title, a legend, one group of bars per
// category (labelled on the left, its axis titled), and a value axis with ticks and its title.

import type { ChartData } from "./chart-data.ts";

const esc = (s: string) => s.replace(/[<>&"]/g, (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;" })[c]!);
/** Tableau 10: distinguishable, and readable for the common colour-vision deficiencies */
const PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"];
const color = (d: ChartData, series: number) => PALETTE[(d.colors[series] ?? series) % PALETTE.length]!;
/** average glyph width of 12 px sans-serif, for layout without measuring text */
const CHAR_W = 6.6;

/** A value as printed at the end of its bar: 3 significant digits below 100, grouped thousands above. */
export function formatValue(v: number): string {
  if (Math.abs(v) >= 100) return Math.round(v).toLocaleString("en-US");
  if (v === 0) return "0";
  return Number(v.toPrecision(3)).toString();
}

/** A tick label: 20k, 1.5M. */
function formatTick(v: number): string {
  if (v >= 1e6) return `${Number((v / 1e6).toPrecision(3))}M`;
  if (v >= 1e3) return `${Number((v / 1e3).toPrecision(3))}k`;
  return Number(v.toPrecision(3)).toString();
}

/** A round step (1, 2 or 5 × 10^n) that cuts 0..max into about `count` intervals. */
export function niceStep(max: number, count = 5): number {
  if (!(max > 0)) return 1;
  const raw = max / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const f = raw / mag;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
}

function wrap(text: string, maxChars: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    if (line && line.length + 1 + word.length > maxChars) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines;
}

export function groupedBarChart(d: ChartData, width = 760): string {
  const out: string[] = [];
  let y = 8;
  for (const line of wrap(d.title, Math.floor((width - 16) / 7.4))) {
    y += 17;
    out.push(`<text x="8" y="${y}" font-size="14" font-weight="bold">${esc(line)}</text>`);
  }
  // legend, wrapped into rows
  y += 10;
  let x = 8;
  d.series.forEach((s, i) => {
    const w = 18 + s.length * CHAR_W + 18;
    if (x > 8 && x + w > width - 8) {
      x = 8;
      y += 18;
    }
    out.push(`<rect x="${x}" y="${y}" width="12" height="12" fill="${color(d, i)}"/>`);
    out.push(`<text x="${x + 17}" y="${y + 10.5}">${esc(s)}</text>`);
    x += w;
  });
  y += 12;

  const maxLabel = Math.max(...d.groups.map((g) => g.label.length), d.groupAxis.length);
  const left = Math.round(Math.min(300, Math.max(90, maxLabel * CHAR_W + 16)));
  const right = width - 78; // room for the value printed after the longest bar
  const bar = d.series.length <= 4 ? 14 : 10;
  const groupH = d.series.length * (bar + 2) + 12;
  const top = y + 26;
  const bottom = top + d.groups.length * groupH;
  const max = Math.max(0, ...d.groups.flatMap((g) => g.values.map((v) => v ?? 0)));
  const step = niceStep(max);
  const axisMax = Math.max(step, Math.ceil(max / step) * step);
  const sx = (v: number) => left + ((right - left) * v) / axisMax;

  out.push(`<text x="${left - 8}" y="${top - 8}" text-anchor="end" font-style="italic" fill="#555">${esc(d.groupAxis)}</text>`);
  // gridlines and ticks under the bars
  for (let v = 0; v <= axisMax + step / 1e6; v += step) {
    const gx = sx(v).toFixed(1);
    out.push(`<line x1="${gx}" y1="${top}" x2="${gx}" y2="${bottom}" stroke="${v === 0 ? "#888" : "#e2e2e2"}"/>`);
    out.push(`<text x="${gx}" y="${bottom + 15}" text-anchor="middle" fill="#555">${formatTick(v)}</text>`);
  }
  d.groups.forEach((g, gi) => {
    const gy = top + gi * groupH;
    if (gi % 2 === 1) out.push(`<rect x="0" y="${gy}" width="${left - 2}" height="${groupH}" fill="#f4f4f4"/>`);
    const label = g.label.length > 46 ? `${g.label.slice(0, 45)}…` : g.label;
    out.push(`<text x="${left - 8}" y="${gy + groupH / 2 + 4}" text-anchor="end">${esc(label)}</text>`);
    g.values.forEach((v, si) => {
      const by = gy + 6 + si * (bar + 2);
      if (v === null) {
        out.push(`<text x="${left + 4}" y="${by + bar - 3}" fill="#888" font-size="10">— ${esc(d.series[si]!)}: not measured</text>`);
        return;
      }
      const w = Math.max(1, sx(v) - left);
      out.push(`<rect x="${left}" y="${by}" width="${w.toFixed(1)}" height="${bar}" fill="${color(d, si)}"><title>${esc(`${g.label}, ${d.series[si]}: ${formatValue(v)}`)}</title></rect>`);
      out.push(`<text x="${(left + w + 4).toFixed(1)}" y="${by + bar - 3}" font-size="10" fill="#333">${formatValue(v)}</text>`);
    });
  });
  const height = bottom + 44;
  out.push(`<text x="${(left + right) / 2}" y="${bottom + 34}" text-anchor="middle" font-weight="bold" fill="#333">${esc(d.axis)}</text>`);
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">` +
    `<rect width="${width}" height="${height}" fill="#fff"/>${out.join("")}</svg>\n`
  );
}
