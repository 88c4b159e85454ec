// The console's charts, drawn by uPlot from the controller's metrics history and redrawn at every
// collection: an app's requests/s and 5xx/s, latency, and CPU and memory per instance; the routers'
// totals on the cluster page. Each figure says how many points it drew (data-points).

import uPlot from "uplot";

type Cols = Record<string, (number | null)[]>;
const PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4d7c0f", "#be185d"];

interface ChartSpec {
  fig: HTMLElement;
  plot?: uPlot;
  labels: string;
}

function draw(spec: ChartSpec, x: number[], series: { label: string; values: (number | null)[]; color?: string; dash?: number[] }[], yLabel: string): void {
  const labels = series.map((s) => s.label).join("|");
  const data = [x, ...series.map((s) => s.values)] as uPlot.AlignedData;
  spec.fig.dataset.points = String(x.length);
  if (spec.plot && spec.labels === labels) {
    spec.plot.setData(data);
    return;
  }
  spec.plot?.destroy();
  spec.labels = labels;
  const width = Math.max(280, spec.fig.clientWidth - 4);
  spec.plot = new uPlot({
    width, height: 180,
    scales: { x: { time: true }, y: { range: (_u, min, max) => [Math.min(0, min ?? 0), Math.max(max ?? 1, 0.001) * 1.1] } },
    axes: [{ stroke: "#64748b", grid: { stroke: "#e2e8f0" }, values: (_u, splits) => splits.map((s) => new Date(s * 1000).toTimeString().slice(0, 8)) }, { stroke: "#64748b", grid: { stroke: "#e2e8f0" }, label: yLabel, size: 50 }],
    series: [{}, ...series.map((s, i) => ({ label: s.label, stroke: s.color ?? PALETTE[i % PALETTE.length], width: 1.5, dash: s.dash, spanGaps: false, points: { show: x.length < 3 } }))],
    legend: { show: true, live: false },
  }, data, spec.fig);
}

/** Instances sampled at different times share one x axis: the union of their times, null where one has none. */
function align(list: { t: number[]; values: (number | null)[] }[]): { x: number[]; ys: (number | null)[][] } {
  const xs = [...new Set(list.flatMap((l) => l.t))].sort((a, b) => a - b);
  const at = new Map(xs.map((t, i) => [t, i]));
  const ys = list.map((l) => {
    const out: (number | null)[] = new Array(xs.length).fill(null);
    l.t.forEach((t, i) => (out[at.get(t)!] = l.values[i] ?? null));
    return out;
  });
  return { x: xs, ys };
}

const hasValues = (v: (number | null)[] | undefined) => !!v && v.some((x) => x !== null);

export function startCharts(): void {
  const box = document.getElementById("charts");
  if (!box) return;
  const specs = new Map<string, ChartSpec>();
  for (const fig of Array.from(box.querySelectorAll<HTMLElement>("figure[data-chart]"))) specs.set(fig.dataset.chart!, { fig, labels: "" });
  const note = document.getElementById("metrics-note");
  let everyMs = 5000;

  async function refresh(): Promise<void> {
    try {
      if (box!.dataset.metrics) {
        const res = await fetch(box!.dataset.metrics, { headers: { accept: "application/json" } });
        if (!res.ok) return;
        const m = await res.json();
        everyMs = Math.max(1000, m.interval_seconds * 1000);
        const r: Cols = m.requests;
        draw(specs.get("requests")!, r.t as number[], [{ label: "requests/s", values: r.rps! }, { label: "5xx/s", values: r.errors_per_second!, color: "#dc2626" }], "req/s");
        const perApp = hasValues(r.p50_ms);
        const lat: Cols = perApp ? r : m.router_latency;
        draw(specs.get("latency")!, lat.t as number[], [
          { label: perApp ? "p50" : "p50 (all routes)", values: lat.p50_ms! },
          { label: perApp ? "p99" : "p99 (all routes)", values: lat.p99_ms!, color: "#dc2626" },
        ], "ms");
        const inst = m.instances as { index: number; instance_id: string; t: number[]; cpu: (number | null)[]; mem_bytes: (number | null)[] }[];
        const cpu = align(inst.map((i) => ({ t: i.t, values: i.cpu })));
        draw(specs.get("cpu")!, cpu.x, inst.map((i, k) => ({ label: `#${i.index} ${i.instance_id.slice(0, 6)}`, values: cpu.ys[k]! })), "%");
        const mem = align(inst.map((i) => ({ t: i.t, values: i.mem_bytes.map((b) => (b === null ? null : b / 1048576)) })));
        draw(specs.get("memory")!, mem.x, inst.map((i, k) => ({ label: `#${i.index} ${i.instance_id.slice(0, 6)}`, values: mem.ys[k]! })), "MiB");
        if (note) note.textContent = `every ${m.interval_seconds} s, last ${Math.round(m.window_seconds / 60)} min; ${m.routers.scraped} of ${m.routers.configured} routers scraped${perApp ? "" : "; latency is the routers' (all routes)"}`;
      } else if (box!.dataset.cluster) {
        const res = await fetch(box!.dataset.cluster, { headers: { accept: "application/json" } });
        if (!res.ok) return;
        const c = await res.json();
        everyMs = Math.max(1000, c.interval_seconds * 1000);
        const h: Cols = c.router_history;
        draw(specs.get("cluster-requests")!, h.t as number[], [{ label: "requests/s", values: h.rps! }, { label: "5xx/s", values: h.errors_per_second!, color: "#dc2626" }], "req/s");
        draw(specs.get("cluster-latency")!, h.t as number[], [{ label: "p50", values: h.p50_ms! }, { label: "p99", values: h.p99_ms!, color: "#dc2626" }], "ms");
      }
    } finally {
      setTimeout(refresh, everyMs);
    }
  }
  void refresh();
}
