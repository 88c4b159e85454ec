// Generates bench/README.md from the full results in a results directory (<bench>.json each): every
// bench's tables with their SVG charts right below them. Reads only the JSON: no bench has to run.

import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { reportMarkdown, resultsDir as defaultResultsDir, type StoredReport } from "./report.ts";
import { tableCharts } from "./chart-data.ts";
import { groupedBarChart } from "./svg.ts";


const INTRO = [
  "# skiff benchmarks",
  "",
  "Generated from `bench/results/*.json` by `npm run bench` (which runs the benches first) or by",
  "`bun bench/run.ts --readme` (which only reads the JSON); do not edit by hand. Each bench writes its own",
  "JSON (machine, versions, command, every figure, and the git commit measured: results stored before the",
  "commit was recorded name none) and a Markdown table beside it; `--quick` runs write `<bench>.quick.*`",
  "and are not shown here. Each chart is declared by its table and drawn under its heading.",
  "",
  "## CPU pinning on two cores",
  "",
  "The load generator, the proxy under test and the backend share the machine's two cores. Every peer is",
  "measured the same way: the proxy (ours, nginx or HAProxy, one worker each) is pinned to CPU 1 with",
  "`taskset`, and wrk and the backend share CPU 0. The fairest single figure is the proxy's own CPU",
  "time per request (user+system from /proc over requests served): it barely moves with noise.",
  "",
];

/**
 * Writes `readme` (default: beside the results directory) for the named benches, and the charts into
 * `<resultsDir>/charts/` (charts of earlier generations removed). Returns the chart files written.
 */
export function writeBenchReadme(names: string[], resultsDir = defaultResultsDir, readme = join(dirname(resultsDir), "README.md")): string[] {
  const chartsDir = join(resultsDir, "charts");
  mkdirSync(chartsDir, { recursive: true });
  for (const f of readdirSync(chartsDir)) if (f.endsWith(".svg")) rmSync(join(chartsDir, f));
  const link = (file: string) => relative(dirname(readme), file);
  const written: string[] = [];
  const parts = [...INTRO];
  for (const name of names) {
    const json = join(resultsDir, `${name}.json`);
    if (!existsSync(json)) {
      parts.push(`## ${name} benchmark`, "", `No full run recorded yet (\`npm run bench -- ${name}\`).`, "");
      continue;
    }
    const r = JSON.parse(readFileSync(json, "utf8")) as StoredReport;
    const charts = (t: StoredReport["tables"][number], i: number) =>
      tableCharts(t).flatMap((c, j) => {
        const file = join(chartsDir, `${name}-${i}-${j}.svg`);
        writeFileSync(file, groupedBarChart(c));
        written.push(file);
        return [`![${c.title}](${link(file)})`, ""];
      });
    const [heading, ...body] = reportMarkdown(r, { level: 2, charts }).trim().split("\n");
    parts.push(heading!, "", `Full results: [${link(json)}](${link(json)}).`, ...body, "");
  }
  writeFileSync(readme, parts.join("\n"));
  return written;
}
