// The soak's chart: RSS (MiB) and open fds of every component over time, two panels sharing the time
// axis, faults marked as vertical lines. Plain SVG, no dependency.

import { formatValue, niceStep } from "../../bench/lib/svg.ts";

export interface Series {
  name: string;
  /** [seconds since start, value] */
  points: [number, number][];
}

const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf"];
const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");

function panel(title: string, series: Series[], y0: number, height: number, width: number, maxT: number, faults: { t: number; label: string }[], showAxis: boolean): string {
  const left = 60, right = 150, top = y0 + 24, h = height - 48;
  const w = width - left - right;
  const maxV = Math.max(1, ...series.flatMap((s) => s.points.map((p) => p[1])));
  const step = niceStep(maxV);
  const top_ = Math.ceil(maxV / step) * step;
  const x = (t: number) => left + (t / Math.max(1, maxT)) * w;
  const y = (v: number) => top + h - (v / top_) * h;
  const out: string[] = [`<text x="${left}" y="${y0 + 16}" font-size="13" font-weight="bold">${esc(title)}</text>`];
  for (let v = 0; v <= top_ + 1e-9; v += step) out.push(`<line x1="${left}" x2="${left + w}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/><text x="${left - 6}" y="${y(v) + 4}" font-size="11" text-anchor="end">${formatValue(v)}</text>`);
  const tStep = niceStep(maxT / 60, 6) * 60;
  if (showAxis) for (let t = 0; t <= maxT; t += tStep) out.push(`<text x="${x(t)}" y="${top + h + 16}" font-size="11" text-anchor="middle">${formatValue(t / 60)} min</text>`);
  for (const f of faults) out.push(`<line x1="${x(f.t)}" x2="${x(f.t)}" y1="${top}" y2="${top + h}" stroke="#999" stroke-dasharray="3,3"><title>${esc(f.label)}</title></line>`);
  series.forEach((s, i) => {
    const c = COLORS[i % COLORS.length];
    const d = s.points.map((p, k) => `${k ? "L" : "M"}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join("");
    out.push(`<path d="${d}" fill="none" stroke="${c}" stroke-width="1.5"/>`);
    out.push(`<rect x="${left + w + 12}" y="${top + i * 16}" width="10" height="10" fill="${c}"/><text x="${left + w + 26}" y="${top + i * 16 + 9}" font-size="11">${esc(s.name)}</text>`);
  });
  out.push(`<line x1="${left}" x2="${left}" y1="${top}" y2="${top + h}" stroke="#333"/><line x1="${left}" x2="${left + w}" y1="${top + h}" y2="${top + h}" stroke="#333"/>`);
  return out.join("\n");
}

export function soakChart(title: string, rss: Series[], fds: Series[], faults: { t: number; label: string }[], width = 900): string {
  const maxT = Math.max(1, ...rss.flatMap((s) => s.points.map((p) => p[0])));
  const ph = 260;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${ph * 2 + 40}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="60" y="18" font-size="14">${esc(title)}</text>`,
    panel("RSS (MiB)", rss, 24, ph, width, maxT, faults, true),
    panel("open file descriptors", fds, 24 + ph, ph, width, maxT, faults, true),
    `</svg>`,
  ].join("\n");
}
