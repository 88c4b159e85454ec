// writeBenchReadme on fixture results in a temporary directory: it needs no bench run, puts each table's
// charts under its heading, names where and at which commit it was measured, and clears old charts.

import { afterEach, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { writeBenchReadme } from "./readme.ts";
import type { StoredReport } from "./report.ts";

let root: string | undefined;
afterEach(() => {
  if (root) rmSync(root, { recursive: true, force: true });
  root = undefined;
});

const stored = (over: Partial<StoredReport>): StoredReport => ({
  bench: "router",
  command: "bun bench/router/router-bench.ts",
  quick: false,
  figures: {},
  date: "2026-11-28T07:00:00.000Z",
  machine: { cpus: 2, cpu_model: "Test CPU", memory_gib: 4, kernel: "6.1", node: "v20.0.0", bun: "1.4.5" },
  versions: { "uWebSockets.js": "@trufflesuite/uws-js-unofficial@20.30.0-unofficial.0", nginx: "nginx/1.22.1" },
  git: { commit: "0123456789abcdef0123456789abcdef01234567", dirty: true },
  tables: [],
  ...over,
});

function fixtures() {
  root = mkdtempSync(join(tmpdir(), "skiff-readme-"));
  const results = join(root, "results");
  mkdirSync(join(results, "charts"), { recursive: true });
  writeFileSync(join(results, "charts", "router-0.svg"), "<svg>a chart of an earlier generation</svg>");
  writeFileSync(
    join(results, "router.json"),
    JSON.stringify(
      stored({
        tables: [
          {
            title: "0-byte responses (req/s)",
            columns: ["target", "conns", "req/s", "p50 ms", "p99 ms", "p99.9 ms", "failures"],
            rows: [
              ["direct", "64", 72_000, 0.6, 0.9, 3.1, "0"],
              ["skiff", "64", 54_000, 1.0, 1.9, 6.4, "0"],
              ["direct", "256", 70_000, 2.5, 3.3, 4.0, "0"],
              ["skiff", "256", 52_000, 4.6, 8.2, 12.5, "0"],
            ],
            notes: "Medians of 3 rounds.",
            charts: [
              { title: "throughput", values: ["req/s"], groupBy: ["conns"], seriesBy: "target", axis: "requests per second" },
              { title: "latency", values: ["p50 ms", "p99 ms", "p99.9 ms"], groupBy: ["conns", "target"], axis: "ms" },
            ],
          },
          { title: "Summary", columns: ["figure", "value"], rows: [["failed requests", 0], ["req/s", 54_000]] },
        ],
        notes: ["Pinned: proxy on CPU 1."],
      }),
    ),
  );
  // a quick run's results are never shown
  writeFileSync(join(results, "bus.quick.json"), JSON.stringify(stored({ bench: "bus", quick: true })));
  return results;
}

test("the README is generated from the results JSON alone, each table with its declared charts (issue 9)", () => {
  const results = fixtures();
  const charts = writeBenchReadme(["router", "bus"], results);
  const readme = readFileSync(join(root!, "README.md"), "utf8");

  expect(charts.map((c) => basename(c))).toEqual(["router-0-0.svg", "router-0-1.svg"]);
  expect(readdirSync(join(results, "charts")).sort()).toEqual(["router-0-0.svg", "router-0-1.svg"]); // the old one removed
  // each chart sits under its table's heading, before the rows, with relative links
  const heading = readme.indexOf("#### 0-byte responses (req/s)");
  const img = readme.indexOf("![throughput](results/charts/router-0-0.svg)");
  const rows = readme.indexOf("| target | conns | req/s |");
  expect(heading).toBeGreaterThan(0);
  expect(img).toBeGreaterThan(heading);
  expect(rows).toBeGreaterThan(img);
  expect(readme).toContain("![latency](results/charts/router-0-1.svg)");
  expect(readme).toContain("Full results: [results/router.json](results/router.json).");
  // where, when, at which commit, with which uWS.js
  expect(readme).toContain("at commit 0123456789ab (with uncommitted changes)");
  expect(readme).toContain("uWebSockets.js @trufflesuite/uws-js-unofficial@20.30.0-unofficial.0");
  expect(readme).toContain("### Notes");
  expect(readme).toContain("- Pinned: proxy on CPU 1.");
  // a bench with only a quick run has no full results
  expect(readme).toContain("## bus benchmark\n\nNo full run recorded yet (`npm run bench -- bus`).");

  const throughput = readFileSync(charts[0]!, "utf8");
  for (const text of [">direct<", ">skiff<", ">64 conns<", ">256 conns<", ">requests per second<", ">72,000<", ">52,000<"]) expect(throughput).toContain(text);
  const latency = readFileSync(charts[1]!, "utf8");
  for (const text of [">p50 ms<", ">p99 ms<", ">p99.9 ms<", ">256 conns · skiff<", ">12.5<"]) expect(latency).toContain(text);
});

test("regenerating from the same JSON writes the same README and charts", () => {
  const results = fixtures();
  writeBenchReadme(["router"], results);
  const first = readFileSync(join(root!, "README.md"), "utf8");
  const chart = readFileSync(join(results, "charts", "router-0-0.svg"), "utf8");
  writeBenchReadme(["router"], results);
  expect(readFileSync(join(root!, "README.md"), "utf8")).toBe(first);
  expect(readFileSync(join(results, "charts", "router-0-0.svg"), "utf8")).toBe(chart);
  expect(existsSync(join(results, "router.md"))).toBe(false); // reads, never writes results
});
